"""Atari 2600 games (the Arcade Learning Environment, package ``ale-py``) for smevo.

Two kinds of id, both usable without the user registering or importing anything:

- ``ALE/<Game>-v5``, ale-py's own ids: the raw game, 210x160 RGB frames.
- ``Atari/<Game>-v0``: the same game with the standard preprocessing of the DQN line of work,
  made by `make_atari` from Gymnasium's own wrappers, so that a config (data) can ask for it
  by a registered id.

`register` registers both by importing ``ale_py`` (its import registers its ids), which
`smevo.envs` does only when an ``ALE/`` or ``Atari/`` id is asked for.

Seeded resets are deterministic (the emulator, the sticky actions and the no-op starts all
draw from the seed), so the env can be reused for another episode; ``reset_keeps_state`` is
not needed.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import register as register_id
from gymnasium.envs.registration import registry

ALE_NAMESPACE = "ALE/"
NAMESPACE = "Atari/"


def register() -> bool:
    """If ``ale_py`` is installed, register its ids (``ALE/<Game>-v5`` and the legacy v0/v4
    ones) by importing it, and ``Atari/<Game>-v0`` for every ``ALE/<Game>-v5``; whether it
    is installed."""
    if importlib.util.find_spec("ale_py") is None:
        return False
    gym.register_envs(importlib.import_module("ale_py"))
    games = [i[len(ALE_NAMESPACE):-len("-v5")] for i in registry
             if i.startswith(ALE_NAMESPACE) and i.endswith("-v5")]
    for game in games:
        if f"{NAMESPACE}{game}-v0" not in registry:
            register_id(id=f"{NAMESPACE}{game}-v0", entry_point="smevo_envs.atari:make_atari",
                        kwargs={"game": game})
    return True


def make_atari(
    game: str = "Pong",
    *,
    frame_skip: int = 4,
    screen_size: int = 84,
    noop_max: int = 30,
    frame_stack: int = 4,
    render_mode: str | None = None,
    **ale_kwargs: Any,
) -> gym.Env:
    """``ALE/<game>-v5`` preprocessed as in DQN (Mnih et al., 2015): grayscale, resized to
    `screen_size` square, each action repeated `frame_skip` times (max-pooling the last two
    frames), up to `noop_max` no-op actions at reset, and the last `frame_stack` frames
    stacked. Observations are `[frame_stack, screen_size, screen_size]` uint8, channels first.

    `ale_kwargs` go to ale-py's env (e.g. ``repeat_action_probability``: v5's sticky actions,
    0.25 by default). Lives are not episodes: an episode ends when the game does.
    """
    if not register():
        raise gym.error.DependencyNotInstalled(
            "Atari needs the ale-py package: pip install 'smevo[pixels]'"
        )
    # AtariPreprocessing does the frame skipping, so the emulator must not skip as well.
    env = gym.make(f"{ALE_NAMESPACE}{game}-v5", frameskip=1, render_mode=render_mode, **ale_kwargs)
    env = gym.wrappers.AtariPreprocessing(env, noop_max=noop_max, frame_skip=frame_skip,
                                          screen_size=screen_size, grayscale_obs=True)
    return gym.wrappers.FrameStackObservation(env, frame_stack)
