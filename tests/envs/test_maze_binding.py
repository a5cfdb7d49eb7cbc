"""The pybind11 binding survives junk: a clean ValueError, or a valid finite state."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smevo_envs import _maze
from smevo_envs.maze import BreadcrumbHardMazeEnv, BreadcrumbHardMazeVectorEnv, core_maze, load_maze

N = 3
MAZE = core_maze(load_maze())
JUNK_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

dtypes = st.sampled_from(
    [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_]
)
shapes = st.one_of(
    st.just((N, 2)), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
)


@st.composite
def junk_arrays(draw):
    dtype = np.dtype(draw(dtypes))
    shape = draw(shapes)
    if dtype.kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=8 * dtype.itemsize)
        values = st.one_of(st.floats(0, 1, width=8 * dtype.itemsize), elements)
        return draw(hnp.arrays(dtype, shape, elements=values))
    return draw(hnp.arrays(dtype, shape))


junk_objects = st.one_of(
    junk_arrays(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.lists(st.floats(), max_size=3), max_size=4),  # ragged or not
    st.just(np.zeros((N, 2), dtype=np.complex64)),
    st.just(np.array([["a", "b"]] * N)),
    st.just(np.full((N, 2), None, dtype=object)),
    st.integers(),
    st.floats(),
)


def _assert_valid(robots: _maze.Robots) -> None:
    state = robots.get_state()
    for key in ("position", "heading", "speed", "angular_velocity"):
        assert np.all(np.isfinite(state[key])), key
    assert np.all(np.abs(state["speed"]) <= 3.0) and np.all(
        np.abs(state["angular_velocity"]) <= 3.0
    )
    assert np.all((state["steps"] >= 0) & (state["steps"] <= 400))
    for x, y in state["position"]:
        assert not MAZE.collides(x, y)
    observations = robots.observations()
    assert observations.shape == (N, 11) and np.all((observations >= 0) & (observations <= 1))


def _robots_mid_episode() -> _maze.Robots:
    robots = _maze.Robots(MAZE, N)
    robots.step(np.full((N, 2), [0.4, 1.0]), 20)
    return robots


@JUNK_SETTINGS
@given(
    actions=junk_objects,
    frame_skip=st.one_of(st.integers(-3, 500), st.integers(), st.floats(), st.none()),
)
@pytest.mark.bitexact
def test_step_with_junk(actions, frame_skip):
    robots = _robots_mid_episode()
    before = robots.get_state()
    try:
        robots.step(actions, frame_skip)
    except ValueError:
        after = robots.get_state()
        assert all(np.array_equal(after[k], before[k]) for k in before)
    _assert_valid(robots)


@JUNK_SETTINGS
@given(mask=junk_objects)
def test_reset_masks_with_junk(mask):
    robots = _robots_mid_episode()
    for call in (lambda: robots.reset(mask), lambda: robots.step(np.ones((N, 2)), 1, mask)):
        with contextlib.suppress(ValueError):
            call()
        _assert_valid(robots)


@JUNK_SETTINGS
@given(
    key=st.sampled_from(["position", "heading", "speed", "angular_velocity", "steps", "solved"]),
    value=junk_objects,
)
def test_set_state_with_junk(key, value):
    robots = _robots_mid_episode()
    state = robots.get_state()
    state[key] = value
    with contextlib.suppress(ValueError):
        robots.set_state(state)
    if key != "position":  # a junk position may be valid but inside a wall: allowed here
        _assert_valid(robots)


any_float = st.floats(allow_nan=True, allow_infinity=True)
wall_arrays = hnp.arrays(
    np.float64,
    st.tuples(st.integers(0, 4), st.just(4)),
    elements=st.one_of(st.floats(-50, 250), any_float),
)


@JUNK_SETTINGS
@given(
    walls=st.one_of(wall_arrays, junk_objects),
    start=st.one_of(st.tuples(any_float, any_float), junk_objects),
    heading=st.one_of(any_float, junk_objects),
    steps=st.one_of(st.integers(-5, 500), junk_objects),
)
def test_maze_constructor_with_junk(walls, start, heading, steps):
    try:
        maze = _maze.Maze(walls, start, heading, (31.0, 20.0), steps)
    except ValueError:
        return
    robots = _maze.Robots(maze, 2)
    robots.step(np.full((2, 2), [0.7, 1.0]), 5)
    assert np.all(np.isfinite(robots.get_state()["position"]))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.step(np.zeros((N, 3))), r"actions must have shape \(3, 2\), got \(3, 3\)"),
        (lambda r: r.step(np.full((N, 2), np.nan)), "actions must be finite float32 values"),
        (lambda r: r.step(np.full((N, 2), 1e39)), "actions must be finite float32 values"),
        (lambda r: r.step(np.array([["a", "b"]] * N)), "actions must hold real numbers"),
        (lambda r: r.step(np.ones((N, 2)), 0), "frame_skip must be >= 1"),
        (lambda r: r.step(np.ones((N, 2)), 2**70), "frame_skip is out of range"),
        (lambda r: r.step(np.ones((N, 2)), 1.0), "frame_skip must be an int"),
        (lambda r: r.reset(np.ones(N, np.int64)), "mask must have dtype bool"),
        (lambda r: r.set_state({}), "state lacks position"),
        (lambda r: _maze.Robots(MAZE, 0), r"size must be in \[1, 2\*\*24\]"),
        (
            lambda r: _maze.Maze(np.zeros((1, 3)), (0, 0), 0, (1, 1), 10),
            r"walls must have shape \(n, 4\)",
        ),
        (lambda r: _maze.Maze(np.zeros((0, 4)), (0, 0), 0, (1, 1), 0), r"steps must be in \[1, "),
        (lambda r: _maze.Maze(np.zeros((0, 4)), (2e6, 0), 0, (1, 1), 9), r"start .* within"),
    ],
)
def test_error_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call(_maze.Robots(MAZE, N))


@pytest.mark.bitexact
def test_huge_but_finite_actions_are_clamped_like_the_reference():
    robots, clamped = _maze.Robots(MAZE, 1), _maze.Robots(MAZE, 1)
    robots.step(np.array([[3e38, -3e38]]), 50)
    clamped.step(np.array([[1.0, 0.0]]), 50)
    assert all(np.array_equal(v, clamped.get_state()[k]) for k, v in robots.get_state().items())


@pytest.mark.bitexact
def test_accepts_other_real_dtypes_and_non_contiguous_arrays():
    reference, other = _maze.Robots(MAZE, N), _maze.Robots(MAZE, N)
    actions = np.random.default_rng(0).random((N, 4))
    reference.step(actions[:, ::2].astype(np.float32).copy(), 30)
    other.step(actions[:, ::2], 30)  # float64, strided
    assert np.array_equal(reference.observations(), other.observations())


@JUNK_SETTINGS
@given(action=junk_objects)
def test_envs_step_with_junk(action):
    env, envs = BreadcrumbHardMazeEnv(), BreadcrumbHardMazeVectorEnv(num_envs=N)
    env.reset()
    envs.reset()
    calls = [(env, action), (envs, action)]
    if isinstance(action, np.ndarray) and action.shape == (N, 2):
        calls.append((env, action[0]))
    for target, junk in calls:
        try:
            observation, *_ = target.step(junk)
        except ValueError:
            continue
        assert target.observation_space.contains(observation)
        assert np.all(np.isfinite(target._robots.get_state()["position"]))
