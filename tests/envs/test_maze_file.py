"""Maze files: the shipped hard maze, other mazes, and parse errors that name the line."""

from __future__ import annotations

import re

import numpy as np
import pytest

from smevo_envs.maze import (
    BreadcrumbHardMazeEnv,
    BreadcrumbHardMazeVectorEnv,
    MazeSpec,
    core_maze,
    load_maze,
    parse_maze,
)

HARD_MAZE_WALLS = (
    (41, 5, 3, 8), (3, 8, 4, 49), (4, 49, 57, 53), (4, 49, 7, 202), (7, 202, 195, 198),
    (195, 198, 186, 8), (186, 8, 39, 5), (56, 54, 56, 157), (57, 106, 158, 162),
    (77, 201, 108, 164), (6, 80, 33, 121), (192, 146, 87, 91), (56, 55, 133, 30),
)  # fmt: skip

# A 100 x 60 box with a wall across the middle, open at the bottom.
BOX = """0
50
5
20 50
0
80 50
80 50
0 0 100 0
100 0 100 60
100 60 0 60
0 60 0 0
50 0 50 40
"""


def test_the_shipped_hard_maze_is_the_reference_geometry():
    maze = load_maze()
    assert maze == MazeSpec(
        walls=tuple(tuple(float(v) for v in wall) for wall in HARD_MAZE_WALLS),
        start=(36.0, 184.0),
        start_heading=0.0,
        goal=(31.0, 20.0),
        poi=(31.0, 20.0),
        steps=400,
    )


def test_another_maze_file(tmp_path):
    path = tmp_path / "box.txt"
    path.write_text(BOX)
    env = BreadcrumbHardMazeEnv(maze_file=path, frame_skip=1)
    observation, info = env.reset()
    assert info["position"].tolist() == [20.0, 50.0]
    # up: the top wall; up-right: the middle wall; ahead: the right wall (the middle wall
    # ends at y = 40); down-right, down: the bottom wall; behind: the left wall
    assert observation[1:7] == pytest.approx([0.5, 0.3 * 2**0.5, 0.8, 0.1 * 2**0.5, 0.1, 0.2])
    assert info["breadcrumb_distance"] == 60.0  # straight east under the middle wall
    steps = 0
    truncated = False
    while not truncated:
        *_, truncated, info = env.step(np.array([0.5, 1.0], np.float32))
        steps += 1
    assert steps == 50
    assert info["solved"]  # it drove through the goal (80, 50) ...
    x = info["position"][0]
    assert 89.0 <= x <= 92.0  # ... and on into the right wall: 8 away is allowed, closer not


def test_a_goal_cut_off_from_the_start_still_has_defined_distances():
    walled_in = BOX.replace("5\n20 50", "9\n20 50") + (
        "70 40 90 40\n90 40 90 55\n90 55 70 55\n70 55 70 40\n"  # a closed room round the goal
    )
    maze = core_maze(parse_maze(walled_in))
    grid = maze.breadcrumb_grid()
    assert maze.breadcrumb_distance(80, 50) == 0.0
    assert np.all(grid >= 0)
    assert maze.breadcrumb_distance(20, 50) >= 60.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: the file ends early; expected the disable flag"),
        ("1 400 0 0 0 0 0 0 0 0", "line 1: expected the disable flag .* in \\[0, 0\\], got 1"),
        ("0\n0\n0", "line 2: expected the number of simulator steps in \\[1, 10000000\\]"),
        (
            "0\n400\nthirteen",
            "line 3: expected the number of walls \\(an integer\\), got 'thirteen'",
        ),
        ("0\n400\n1\n36 abc", "line 4: expected start y \\(a number\\), got 'abc'"),
        ("0\n400\n1\n36 184\nnan", "line 5: expected the start heading .* finite number"),
        (
            "0\n400\n1\n36 184\n0\n31 20\n31 20\n1 2 3",
            "line 8: the file ends early; expected wall 1 of 1 \\(ax ay bx by\\): by",
        ),
        (
            "0\n400\n1\n36 184\n0\n31 20\n31 20\n1 2 3 4\n5",
            "line 9: expected the end of the file after 1 walls, got '5'",
        ),
        ("0\n400\n1\n36 184\n0\n31 20\n31 20\n1 2 3 1e9", "line 8: .*within ±1e\\+06"),
    ],
)
def test_parse_errors_name_the_line_and_the_expectation(text, message):
    with pytest.raises(ValueError, match=message):
        parse_maze(text, source="bad.txt")


def test_load_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.txt"
    path.write_text("0\n400\n")
    with pytest.raises(ValueError, match=r"broken.txt, line 2: the file ends early"):
        BreadcrumbHardMazeEnv(maze_file=path)
    with pytest.raises(FileNotFoundError):
        BreadcrumbHardMazeEnv(maze_file=tmp_path / "missing.txt")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "is a directory, not a maze file"),
        (BOX.encode().replace(b"20 50", b"20 5\xff"), r"not UTF-8 text \(byte 11 is 0xff\)"),
        (BOX.replace("50 0 50 40", "0 0 5000 5000").encode(), "grid cells, more than"),
    ],
    ids=["directory", "bad-utf8", "grid-too-large"],
)
@pytest.mark.parametrize("env_class", [BreadcrumbHardMazeEnv, BreadcrumbHardMazeVectorEnv])
def test_unreadable_maze_files_are_one_value_error_naming_the_file(
    tmp_path, env_class, content, message
):
    path = tmp_path / "maze.txt"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=f"^maze file {re.escape(str(path))}: .*{message}"):
        env_class(maze_file=path)


@pytest.mark.bitexact
def test_free_grid_is_the_collision_test_at_every_grid_point():
    rng = np.random.default_rng(0)
    walls = rng.uniform(0, 120, (60, 4))
    walls[:10, 3] = walls[:10, 1]  # horizontal
    walls[10:20, 2] = walls[10:20, 0]  # vertical
    walls[20:25, 2:] = walls[20:25, :2]  # single points
    walls[25:40] = np.round(walls[25:40])  # ends on grid points
    walls[40:45, 1::2] += 8.0  # long walls with ends far off the rows' grid points
    text = "0\n400\n60\n5 5\n0\n100 100\n100 100\n" + "\n".join(
        " ".join(repr(float(v)) for v in wall) for wall in walls
    )
    maze = core_maze(parse_maze(text))
    free = maze.free_grid()
    x0, y0 = maze.grid_origin
    rows, columns = np.indices(free.shape)
    collides = np.vectorize(lambda r, c: maze.collides(float(x0 + c), float(y0 + r)))
    assert 0 < free.sum() < free.size
    assert np.array_equal(free, ~collides(rows, columns))
