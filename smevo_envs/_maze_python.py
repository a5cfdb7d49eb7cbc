"""A slow, pure-Python model of the hard-maze robot: a reference, not an environment.

It is written from the reference description (safe-mutations reference §4.3: sensors,
motor model, collisions, goal check), independently of the C++ core in `cpp/maze.cpp`, and
exists for two readers only:

* `tests/envs/test_maze_physics.py` checks that the C++ core agrees with it on positions,
  headings and sensor readings (with `number=np.float32`, so both do float32 arithmetic);
* `scripts/bench_envs.py` times it against the C++ vector env (with `number=float`, the
  fastest plain-Python arithmetic).

Nothing in the package uses it at run time. It has no breadcrumb map.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from smevo_envs._maze_file import MazeSpec

PI = 3.1415926  # the reference simulator's approximation of pi
RANGEFINDER_ANGLES = (-90.0, -45.0, 0.0, 45.0, 90.0, -180.0)
RANGEFINDER_RANGE = 100.0
RADAR_SLICES = ((315.0, 405.0), (45.0, 135.0), (135.0, 225.0), (225.0, 315.0))
ROBOT_RADIUS = 8.0
GOAL_RADIUS = 10.0


class PythonRobot:
    """One robot in one maze, simulated one step at a time in plain Python.

    `number` is the scalar type of every quantity: `np.float32` reproduces the reference's
    float32 arithmetic (each operation rounded to float32), `float` runs in float64.
    """

    def __init__(self, maze: MazeSpec, number: Callable[[Any], Any] = np.float32):
        self.n = number
        n = number
        self.walls = [tuple(n(v) for v in wall) for wall in maze.walls]
        self.start = (n(maze.start[0]), n(maze.start[1]))
        self.start_heading = n(maze.start_heading)
        self.goal = (n(maze.goal[0]), n(maze.goal[1]))
        self.steps_per_episode = maze.steps
        self.reset()

    def reset(self) -> None:
        n = self.n
        self.x, self.y = self.start
        self.heading = self.start_heading
        self.speed = n(0.0)
        self.angular_velocity = n(0.0)
        self.steps = 0
        self.solved = self._near_goal()

    # --- motor model and movement (one simulator step) ---------------------------------

    def step(self, turn: float, speed: float) -> None:
        n = self.n
        turn = min(max(n(turn), n(0.0)), n(1.0))
        speed = min(max(n(speed), n(0.0)), n(1.0))
        wanted_angular_velocity = (turn - n(0.5)) * n(6.0)
        wanted_speed = (speed - n(0.5)) * n(6.0)
        change = min(max(wanted_angular_velocity - self.angular_velocity, n(-0.2)), n(0.2))
        self.angular_velocity = self.angular_velocity + change
        change = min(max(wanted_speed - self.speed, n(-0.2)), n(0.2))
        self.speed = self.speed + change
        self.speed = min(max(self.speed, n(-3.0)), n(3.0))
        self.angular_velocity = min(max(self.angular_velocity, n(-3.0)), n(3.0))

        angle = self.heading / n(180.0) * n(PI)
        vx = n(math.cos(angle)) * self.speed
        vy = n(math.sin(angle)) * self.speed
        self.heading = self.heading + self.angular_velocity
        if self.heading > n(360.0):
            self.heading = self.heading - n(360.0)
        if self.heading < n(0.0):
            self.heading = self.heading + n(360.0)
        new_x, new_y = self.x + vx, self.y + vy
        if not self.collides(new_x, new_y):
            self.x, self.y = new_x, new_y
        self.steps += 1
        if self._near_goal():
            self.solved = True

    def collides(self, x: Any, y: Any) -> bool:
        """Whether some wall is closer than the robot radius to (x, y)."""
        n = self.n
        limit = n(ROBOT_RADIUS) * n(ROBOT_RADIUS)
        for ax, ay, bx, by in self.walls:
            length_sq = (bx - ax) * (bx - ax) + (by - ay) * (by - ay)
            if length_sq == 0:
                t = n(0.0)
            else:
                t = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length_sq
            t = min(max(t, n(0.0)), n(1.0))
            cx, cy = ax + t * (bx - ax), ay + t * (by - ay)
            if (x - cx) * (x - cx) + (y - cy) * (y - cy) < limit:
                return True
        return False

    def _near_goal(self) -> bool:
        dx, dy = self.goal[0] - self.x, self.goal[1] - self.y
        return bool(dx * dx + dy * dy < self.n(GOAL_RADIUS) * self.n(GOAL_RADIUS))

    # --- sensors ------------------------------------------------------------------------

    def observation(self) -> list[float]:
        """Bias, 6 rangefinder readings / range, 4 goal radars."""
        return [1.0, *self.rangefinders(), *self.radars()]

    def rangefinders(self) -> list[float]:
        n = self.n
        readings = []
        for offset in RANGEFINDER_ANGLES:
            angle = (self.heading + n(offset)) / n(180.0) * n(PI)
            end_x = self.x + n(math.cos(angle)) * n(RANGEFINDER_RANGE)
            end_y = self.y + n(math.sin(angle)) * n(RANGEFINDER_RANGE)
            nearest = n(RANGEFINDER_RANGE)
            for wall in self.walls:
                hit = self._intersection((self.x, self.y, end_x, end_y), wall)
                if hit is not None:
                    distance = n(math.hypot(hit[0] - self.x, hit[1] - self.y))
                    nearest = min(nearest, distance)
            readings.append(float(nearest / n(RANGEFINDER_RANGE)))
        return readings

    def _intersection(self, ray: tuple[Any, ...], wall: tuple[Any, ...]) -> tuple[Any, Any] | None:
        """The crossing point of two segments, or None (touching ends and parallels miss)."""
        x1, y1, x2, y2 = ray
        x3, y3, x4, y4 = wall
        denominator = (x2 - x1) * (y4 - y3) - (y2 - y1) * (x4 - x3)
        if denominator == 0:
            return None
        along_ray = ((x3 - x1) * (y4 - y3) - (y3 - y1) * (x4 - x3)) / denominator
        along_wall = ((x3 - x1) * (y2 - y1) - (y3 - y1) * (x2 - x1)) / denominator
        if 0 < along_ray < 1 and 0 < along_wall < 1:
            return x1 + along_ray * (x2 - x1), y1 + along_ray * (y2 - y1)
        return None

    def radars(self) -> list[float]:
        n = self.n
        angle = self.heading / n(180.0) * n(PI)
        cos_h, sin_h = n(math.cos(angle)), n(math.sin(angle))
        dx, dy = self.goal[0] - self.x, self.goal[1] - self.y
        # rotate the goal by -heading into the robot's frame
        forward = dx * cos_h + dy * sin_h
        sideways = dy * cos_h - dx * sin_h
        if forward == 0:
            bearing = 90.0 if sideways >= 0 else 270.0
        else:
            bearing = float(n(math.atan(float(sideways / forward))) / n(PI) * n(180.0))
            if forward < 0:
                bearing += 180.0
        return [
            1.0 if lo <= bearing < hi or lo <= bearing + 360.0 < hi else 0.0
            for lo, hi in RADAR_SLICES
        ]


class PythonRobots:
    """N `PythonRobot`s with the C++ batch's calling convention, for the benchmark."""

    def __init__(self, maze: MazeSpec, size: int, number: Callable[[Any], Any] = float):
        self.robots = [PythonRobot(maze, number) for _ in range(size)]

    def reset(self) -> None:
        for robot in self.robots:
            robot.reset()

    def step(self, actions: np.ndarray, frame_skip: int = 1) -> list[list[float]]:
        """Each robot holds its action for up to `frame_skip` steps; returns observations."""
        observations = []
        for robot, (turn, speed) in zip(self.robots, actions.tolist(), strict=True):
            for _ in range(min(frame_skip, robot.steps_per_episode - robot.steps)):
                robot.step(turn, speed)
            observations.append(robot.observation())
        return observations
