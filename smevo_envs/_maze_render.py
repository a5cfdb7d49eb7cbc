"""pygame-ce drawing of the hard maze: walls, goal, robots with heading and rangefinder rays,
and the trails of the episode. Imported only by `render()`, so pygame stays optional."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium.error import DependencyNotInstalled

from smevo_envs import _maze
from smevo_envs._drawing import AGENT as ROBOT
from smevo_envs._drawing import BACKGROUND, GOAL

if TYPE_CHECKING:
    from smevo_envs._maze_file import MazeSpec

SCALE = 3  # pixels per maze unit
MARGIN = 10.0  # maze units around the walls

WALL = (30, 30, 30)
HEADING = (200, 40, 40)
RAY = (235, 170, 60)
TRAIL = (120, 150, 230)


class MazeRenderer:
    """Draws one maze with any number of robots, to an array or a window."""

    def __init__(self, maze: MazeSpec, mode: str, fps: int):
        try:
            os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
            import pygame
        except ImportError as error:
            raise DependencyNotInstalled(
                "rendering the maze needs pygame-ce; run `pip install pygame-ce` "
                '(or `pip install "gymnasium[box2d]"`, which brings it)'
            ) from error
        self.pygame = pygame
        self.maze = maze
        self.mode = mode
        self.fps = fps
        xs = [w[0] for w in maze.walls] + [w[2] for w in maze.walls] + [maze.start[0], maze.goal[0]]
        ys = [w[1] for w in maze.walls] + [w[3] for w in maze.walls] + [maze.start[1], maze.goal[1]]
        self.origin = (min(xs) - MARGIN, min(ys) - MARGIN)
        self.size = (
            math.ceil((max(xs) - min(xs) + 2 * MARGIN) * SCALE),
            math.ceil((max(ys) - min(ys) + 2 * MARGIN) * SCALE),
        )
        self.surface = pygame.Surface(self.size)
        self.window: Any = None
        self.clock: Any = None
        if mode == "human":
            pygame.display.init()
            pygame.display.set_caption("smevo/BreadcrumbHardMaze")
            self.window = pygame.display.set_mode(self.size)
            self.clock = pygame.time.Clock()

    def _pixel(self, x: float, y: float) -> tuple[int, int]:
        return (round((x - self.origin[0]) * SCALE), round((y - self.origin[1]) * SCALE))

    def render(
        self,
        positions: np.ndarray,
        headings: np.ndarray,
        observations: np.ndarray,
        trails: Sequence[Sequence[Any]],
    ) -> np.ndarray | None:
        """Draw a frame; return it as an (H, W, 3) uint8 array, or show it (human mode)."""
        pygame = self.pygame
        surface = self.surface
        surface.fill(BACKGROUND)
        goal = self._pixel(*self.maze.goal)
        pygame.draw.circle(surface, GOAL, goal, round(_maze.GOAL_RADIUS * SCALE))
        for ax, ay, bx, by in self.maze.walls:
            pygame.draw.line(surface, WALL, self._pixel(ax, ay), self._pixel(bx, by), 3)
        for trail in trails:
            if len(trail) > 1:
                points = [self._pixel(float(x), float(y)) for x, y in trail]
                pygame.draw.lines(surface, TRAIL, False, points, 2)
        for (x, y), heading, observation in zip(positions, headings, observations, strict=True):
            centre = self._pixel(x, y)
            for angle, reading in zip(_maze.RANGEFINDER_ANGLES, observation[1:7], strict=True):
                length = float(reading) * _maze.RANGEFINDER_RANGE
                direction = math.radians(heading + angle)
                end = self._pixel(
                    x + math.cos(direction) * length, y + math.sin(direction) * length
                )
                pygame.draw.line(surface, RAY, centre, end, 1)
            pygame.draw.circle(surface, ROBOT, centre, round(_maze.ROBOT_RADIUS * SCALE))
            nose = math.radians(heading)
            tip = self._pixel(
                x + math.cos(nose) * _maze.ROBOT_RADIUS, y + math.sin(nose) * _maze.ROBOT_RADIUS
            )
            pygame.draw.line(surface, HEADING, centre, tip, 3)

        if self.mode == "human":
            self.window.blit(surface, (0, 0))
            pygame.event.pump()
            pygame.display.flip()
            self.clock.tick(self.fps)
            return None
        return np.ascontiguousarray(np.transpose(pygame.surfarray.array3d(surface), (1, 0, 2)))

    def close(self) -> None:
        if self.window is not None:
            self.pygame.display.quit()
            self.window = None
