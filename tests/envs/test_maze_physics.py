"""The C++ maze core against the pure-Python reference model, and the breadcrumb map."""

from __future__ import annotations

import math

import numpy as np
import pytest

from smevo_envs._maze_python import PythonRobot
from smevo_envs.maze import BreadcrumbHardMazeEnv, core_maze, load_maze

HARD_MAZE = load_maze()
START, GOAL = (36.0, 184.0), (31.0, 20.0)

# A hand-made route from the start to the goal through the hard maze, checked by eye on a
# rendered frame: east above the short diagonal, round the long diagonal's right end, back
# west between the two long diagonals, north into the middle, round the top-right, and west
# along the top corridor into the goal pocket.
ROUTE = [
    (60, 168), (110, 150), (150, 180), (176, 172), (178, 150), (140, 135), (95, 112),
    (75, 95), (80, 75), (150, 50), (150, 20), (100, 20), (60, 22), (31, 20),
]  # fmt: skip


def _random_actions(seed: int, steps: int = 400) -> np.ndarray:
    """Random actions that persist for a while, so the robot travels and meets walls."""
    rng = np.random.default_rng(seed)
    actions = np.empty((steps, 2), dtype=np.float32)
    current = rng.random(2)
    for t in range(steps):
        if rng.random() < 0.05:
            current = rng.random(2) ** [1.0, 0.3]  # speeds lean forward
        actions[t] = np.clip(current + rng.normal(0.0, 0.1, 2), 0.0, 1.0)
    if seed % 2:  # some seeds: uniformly random actions at every step
        actions = rng.random((steps, 2), dtype=np.float32)
    return actions


@pytest.mark.parametrize("seed", range(6))
def test_core_agrees_with_the_python_reference(seed):
    env = BreadcrumbHardMazeEnv(frame_skip=1)
    reference = PythonRobot(HARD_MAZE, np.float32)
    observation, info = env.reset(seed=seed)
    assert np.allclose(observation, reference.observation(), atol=1e-6)
    blocked = 0
    for t, (turn, speed) in enumerate(_random_actions(seed)):
        before = (reference.x, reference.y)
        observation, _, terminated, truncated, info = env.step(np.array([turn, speed]))
        reference.step(turn, speed)
        blocked += before == (reference.x, reference.y) and abs(reference.speed) > 0.5
        assert info["position"] == pytest.approx([reference.x, reference.y], abs=1e-4), t
        assert info["heading"] == pytest.approx(float(reference.heading), abs=1e-4), t
        assert 0.0 <= info["heading"] <= 360.0
        assert observation == pytest.approx(reference.observation(), abs=1e-4), t
        assert info["solved"] == reference.solved
        assert not terminated
        assert truncated == (t == 399)
    assert reference.steps == 400
    if seed % 2 == 0:
        assert blocked > 0  # the persistent walks do run into walls


def test_driving_straight_east_hits_the_wall_and_is_blocked():
    env = BreadcrumbHardMazeEnv(frame_skip=1)
    reference = PythonRobot(HARD_MAZE, np.float32)
    env.reset()
    xs = []
    for _ in range(60):
        _, _, _, _, info = env.step(np.array([0.5, 1.0], dtype=np.float32))
        reference.step(0.5, 1.0)
        assert info["position"][1] == START[1] and info["heading"] == 0.0
        xs.append(info["position"][0])
    assert xs[0] == pytest.approx(36.2)  # speed ramps up by 0.2 per step ...
    assert max(np.diff(xs)) == pytest.approx(3.0)  # ... to the top speed of 3
    stop = xs[-1]
    assert xs[-20:] == [stop] * 20  # then it stands still: the move is blocked
    assert 70.0 < stop < 80.0  # in front of the short diagonal wall (77, 201)-(108, 164)
    maze = core_maze(HARD_MAZE)
    assert not maze.collides(stop, START[1])
    assert maze.collides(stop + 3.0, START[1])  # the next step would touch the wall
    assert reference.collides(np.float32(stop + 3.0), np.float32(START[1]))


def test_turning_wraps_the_heading():
    env = BreadcrumbHardMazeEnv(frame_skip=1)
    env.reset()
    headings = [env.step(np.array([1.0, 0.5]))[4]["heading"] for _ in range(200)]
    assert all(0.0 <= h <= 360.0 for h in headings)
    steps = np.diff(headings)
    assert min(steps) < -350.0  # wrapped from 360 back to 0 at least once
    assert max(steps) == pytest.approx(3.0)  # the angular velocity limit


def test_breadcrumb_distance_is_zero_at_the_goal_and_grows_along_the_corridor():
    maze = core_maze(HARD_MAZE)
    assert maze.breadcrumb_distance(*GOAL) == 0.0
    # along the top corridor, eastwards from the goal, then down the right-hand side
    corridor = [(31, 20), (45, 20), (60, 22), (80, 20), (100, 20), (125, 18), (150, 20),
                (165, 30), (150, 50), (150, 70)]  # fmt: skip
    distances = [maze.breadcrumb_distance(x, y) for x, y in corridor]
    assert distances == sorted(distances) and len(set(distances)) == len(distances)
    # a 4-connected path is never shorter than the straight line
    for (x, y), d in zip(corridor, distances, strict=True):
        assert d >= abs(x - GOAL[0]) + abs(y - GOAL[1])


def test_breadcrumb_distance_falls_along_the_route():
    maze = core_maze(HARD_MAZE)
    start = maze.breadcrumb_distance(*START)
    along = [maze.breadcrumb_distance(x, y) for x, y in ROUTE]
    assert all(d < start for d in along)
    assert along == sorted(along, reverse=True)
    assert along[-1] == 0.0
    assert start > 500  # the straight line is 164 long: the route is far longer
    # the straight-line distance misleads: the dead end under the goal looks close
    dead_end = (30.0, 70.0)
    assert maze.euclidean_distance(*dead_end) < 60.0 < maze.breadcrumb_distance(*dead_end)


def _drive_route(frame_skip: int):
    """Follow ROUTE with a simple steering rule; yields each step's info and reward."""
    env = BreadcrumbHardMazeEnv(frame_skip=frame_skip)
    _, info = env.reset()
    target = 0
    while True:
        x, y = info["position"]
        while target < len(ROUTE) - 1 and math.dist((x, y), ROUTE[target]) < 25:
            target += 1
        tx, ty = ROUTE[target]
        error = (math.degrees(math.atan2(ty - y, tx - x)) - info["heading"] + 180) % 360 - 180
        turn = 0.5 + max(-0.5, min(0.5, error / 35))
        speed = 0.5 + 0.5 * min(1.0, 1.25 * max(0.0, math.cos(math.radians(error))) ** 3)
        _, reward, _, truncated, info = env.step(np.array([turn, speed], dtype=np.float32))
        yield info, reward
        if truncated:
            return


@pytest.mark.parametrize("frame_skip", [1, 3])
def test_a_hand_made_route_solves_the_maze(frame_skip):
    start = core_maze(HARD_MAZE).breadcrumb_distance(*START)
    trajectory = list(_drive_route(frame_skip))
    assert len(trajectory) == math.ceil(400 / frame_skip)
    assert all(info["breadcrumb_distance"] < start for info, _ in trajectory[10:])
    final_info, final_reward = trajectory[-1]
    assert final_info["solved"]
    assert final_reward == -final_info["breadcrumb_distance"] > -30.0
    assert all(reward == 0.0 for _, reward in trajectory[:-1])


@pytest.mark.bitexact
def test_breadcrumb_grid_is_a_bfs_distance():
    maze = core_maze(HARD_MAZE)
    grid = maze.breadcrumb_grid().astype(np.int64)
    free = maze.free_grid()
    x0, y0 = maze.grid_origin
    goal = (GOAL[1] - y0, GOAL[0] - x0)  # (row, column)
    assert grid[int(goal[0]), int(goal[1])] == 0
    rows, columns = np.indices(grid.shape)
    manhattan = np.abs(rows - goal[0]) + np.abs(columns - goal[1])
    assert np.all(grid >= manhattan)

    # the free cells reachable from the goal, by flood fill
    reachable = np.zeros_like(free)
    reachable[int(goal[0]), int(goal[1])] = True
    while True:
        grown = reachable.copy()
        grown[1:] |= reachable[:-1]
        grown[:-1] |= reachable[1:]
        grown[:, 1:] |= reachable[:, :-1]
        grown[:, :-1] |= reachable[:, 1:]
        grown &= free
        grown[int(goal[0]), int(goal[1])] = True
        if np.array_equal(grown, reachable):
            break
        reachable = grown
    assert reachable.sum() > 10_000

    # BFS distance: every reachable cell but the goal has a reachable neighbour one closer,
    # and no two reachable neighbours differ by more than one
    big = np.iinfo(np.int64).max // 2
    value = np.where(reachable, grid, big)
    padded = np.pad(value, 1, constant_values=big)
    neighbours = np.stack(
        [padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2], padded[1:-1, 2:]]
    )
    smallest = neighbours.min(axis=0)
    others = reachable.copy()
    others[int(goal[0]), int(goal[1])] = False
    assert np.all(smallest[others] == grid[others] - 1)
    for neighbour in neighbours:
        both = reachable & (neighbour < big)
        assert np.all(np.abs(neighbour[both] - grid[both]) <= 1)

    # every free cell of the maze's interior is reachable: the start's included
    sx, sy = int(START[0] - x0), int(START[1] - y0)
    assert reachable[sy, sx]
    assert grid[sy, sx] == maze.breadcrumb_distance(*START)


def test_positions_round_to_the_nearest_grid_point_and_clamp_into_the_grid():
    maze = core_maze(HARD_MAZE)
    grid = maze.breadcrumb_grid()
    x0, y0 = maze.grid_origin
    assert maze.breadcrumb_distance(36.4, 183.6) == grid[184 - y0, 36 - x0]
    assert maze.breadcrumb_distance(36.6, 184.0) == grid[184 - y0, 37 - x0]
    assert maze.breadcrumb_distance(-1e6, -1e6) == grid[0, 0]
    assert maze.breadcrumb_distance(1e6, 1e6) == grid[-1, -1]
    assert math.isfinite(maze.breadcrumb_distance(float("nan"), 3.0))
