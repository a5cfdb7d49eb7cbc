"""Maze files: the reference text format, parsed into a `MazeSpec` with errors that name the
line. Its own module so that the renderer and the pure-Python model of the physics read a
`MazeSpec` without importing the env module (`maze`), which imports the renderer."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from importlib import resources

HARD_MAZE_FILE = "hard_maze.txt"  # in smevo_envs/data
MAX_COORDINATE = 1.0e6  # the C++ core's bound on coordinates
MAX_STEPS = 10_000_000  # the C++ core's bound on simulator steps


@dataclass(frozen=True)
class MazeSpec:
    """The contents of a maze file (reference format; see `parse_maze`)."""

    walls: tuple[tuple[float, float, float, float], ...]
    start: tuple[float, float]
    start_heading: float
    goal: tuple[float, float]
    poi: tuple[float, float]  # a "point of interest"; read but unused, as in the reference
    steps: int  # simulator steps per episode


class _Tokens:
    """Whitespace-separated tokens of a maze file, each with its line number."""

    def __init__(self, text: str, source: str):
        self.source = source
        self.tokens = [
            (token, number)
            for number, line in enumerate(text.splitlines(), start=1)
            for token in line.split()
        ]
        self.position = 0
        self.last_line = max(1, len(text.splitlines()))

    def error(self, line: int, message: str) -> ValueError:
        return ValueError(f"{self.source}, line {line}: {message}")

    def _next(self, what: str) -> tuple[str, int]:
        if self.position >= len(self.tokens):
            raise self.error(self.last_line, f"the file ends early; expected {what}")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def integer(self, what: str, low: int, high: int) -> int:
        token, line = self._next(what)
        try:
            value = int(token)
        except ValueError:
            raise self.error(line, f"expected {what} (an integer), got {token!r}") from None
        if not low <= value <= high:
            raise self.error(line, f"expected {what} in [{low}, {high}], got {value}")
        return value

    def number(self, what: str) -> float:
        token, line = self._next(what)
        try:
            value = float(token)
        except ValueError:
            raise self.error(line, f"expected {what} (a number), got {token!r}") from None
        if not (math.isfinite(value) and abs(value) <= MAX_COORDINATE):
            raise self.error(
                line, f"expected {what} (a finite number within ±{MAX_COORDINATE:g}), got {token!r}"
            )
        return value

    def point(self, what: str) -> tuple[float, float]:
        return self.number(f"{what} x"), self.number(f"{what} y")


def parse_maze(text: str, source: str = "<maze>") -> MazeSpec:
    """Parse a maze in the reference text format, or raise ValueError naming line and problem.

    The format is whitespace-separated numbers, in this order: the `disable` flag (must be
    0: collisions block movement; the reference's collision-kills mode is not supported),
    the number of simulator steps, the number of walls n, start x y, start heading (degrees),
    goal x y, point-of-interest x y, then n walls as ax ay bx by. Screen coordinates: x to
    the right, y down.
    """
    tokens = _Tokens(text, source)
    tokens.integer("the disable flag (0: collisions block movement)", 0, 0)
    steps = tokens.integer("the number of simulator steps", 1, MAX_STEPS)
    num_walls = tokens.integer("the number of walls", 0, 1_000_000)
    start = tokens.point("start")
    start_heading = tokens.number("the start heading (degrees)")
    goal = tokens.point("goal")
    poi = tokens.point("point of interest")
    walls = []
    for i in range(num_walls):
        ax, ay, bx, by = (
            tokens.number(f"wall {i + 1} of {num_walls} (ax ay bx by): {field}")
            for field in ("ax", "ay", "bx", "by")
        )
        walls.append((ax, ay, bx, by))
    if tokens.position < len(tokens.tokens):
        token, line = tokens.tokens[tokens.position]
        raise tokens.error(
            line, f"expected the end of the file after {num_walls} walls, got {token!r}"
        )
    return MazeSpec(tuple(walls), start, start_heading, goal, poi, steps)


def load_maze(path: str | os.PathLike[str] | None = None) -> MazeSpec:
    """Read a maze file; None reads the hard maze shipped in smevo_envs/data.

    A missing file is a FileNotFoundError; any other file that cannot be read as a maze (a
    directory, no permission, not UTF-8 text, a parse error) is a ValueError naming it."""
    if path is None:
        resource = resources.files("smevo_envs").joinpath("data", HARD_MAZE_FILE)
        return parse_maze(resource.read_text(encoding="utf-8"), source=HARD_MAZE_FILE)
    source = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ValueError(f"maze file {source}: is a directory, not a maze file") from None
    except OSError as error:
        raise ValueError(f"maze file {source}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        byte = error.object[error.start]
        raise ValueError(
            f"maze file {source}: not UTF-8 text (byte {error.start} is {byte:#04x})"
        ) from None
    return parse_maze(text, source=source)
