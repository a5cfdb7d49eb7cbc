"""MinAtar's five games (Young & Tian, 2019) as Gymnasium envs under MinAtar's own ids.

``MinAtar/<Game>-v0`` (all six actions) and ``-v1`` (the game's minimal action set) are the
ids that ``minatar.gym.register_envs()`` registers; `register` registers them here instead,
with string entry points, so that naming an id imports nothing and the `minatar` package (the
``smevo[pixels]`` extra) is imported only when an env is made. The env is MinAtar's
`Environment` behind Gymnasium's interface, as MinAtar's own wrapper puts it, with two
differences that a trainer needs:

- ``reset`` forgets the previous episode's action. MinAtar repeats the last action with
  probability `sticky_action_prob` and keeps it across resets, so an env reused for another
  episode would let the episode before leak into the first step of the next one, and the
  same seed would not give the same episode.
- ``render()`` in ``"rgb_array"`` mode gives uint8 pixels (MinAtar's gives float colours of
  10x10 cells), each cell `CELL` pixels wide, coloured as MinAtar's own display does.

Observations are MinAtar's 10x10xC boolean frames, channels last (C: 4 for Breakout and
Asterix, 7 Freeway, 10 Seaquest, 6 SpaceInvaders).
"""

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import register as register_id
from gymnasium.envs.registration import registry

GAMES = {
    "Asterix": "asterix",
    "Breakout": "breakout",
    "Freeway": "freeway",
    "Seaquest": "seaquest",
    "SpaceInvaders": "space_invaders",
}
"""Each game's id name -> MinAtar's module name for it."""

NAMESPACE = "MinAtar/"

CELL = 16
"""Pixels per side of one of the 10x10 cells in an rgb_array frame."""


def register() -> bool:
    """Register the MinAtar ids (those not registered yet), each game with all actions (v0)
    and with its minimal action set (v1), if the `minatar` package is installed; whether it
    is. Nothing of `minatar` is imported."""
    if importlib.util.find_spec("minatar") is None:
        return False
    for name, game in GAMES.items():
        for version in (0, 1):
            env_id = f"{NAMESPACE}{name}-v{version}"
            if env_id not in registry:
                register_id(id=env_id, entry_point="smevo_envs.minatar:MinAtarEnv",
                            kwargs={"game": game, "minimal_actions": version == 1})
    return True


class MinAtarEnv(gym.Env):
    """One MinAtar game; see the module docstring for how it differs from MinAtar's wrapper.

    `sticky_action_prob` and `difficulty_ramping` are MinAtar's own options (defaults 0.1 and
    True, as in the MinAtar paper).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(self, game: str, minimal_actions: bool = True, render_mode: str | None = None,
                 sticky_action_prob: float = 0.1, difficulty_ramping: bool = True) -> None:
        try:
            from minatar import Environment
        except ImportError as error:
            raise gym.error.DependencyNotInstalled(
                f"MinAtar needs the minatar package ({error}): pip install 'smevo[pixels]'"
            ) from None
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        self.game = Environment(env_name=game, sticky_action_prob=sticky_action_prob,
                                difficulty_ramping=difficulty_ramping)
        all_actions = list(range(self.game.num_actions()))
        self.action_set = self.game.minimal_action_set() if minimal_actions else all_actions
        self.action_space = gym.spaces.Discrete(len(self.action_set))
        self.observation_space = gym.spaces.Box(0, 1, shape=tuple(self.game.state_shape()),
                                                dtype=bool)
        self._palette: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self.game.seed(seed)
        self.game.last_action = 0  # no sticky action carried over from the last episode
        self.game.reset()
        return self.game.state(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an int in [0, {self.action_space.n}), "
                             f"got {action!r}")
        reward, done = self.game.act(self.action_set[int(action)])
        return self.game.state(), float(reward), bool(done), False, {}

    def render(self) -> np.ndarray | None:
        """The frame as `[10*CELL, 10*CELL, 3]` uint8 (in ``"rgb_array"`` mode; else None):
        each cell takes the colour of its highest set channel, black where none is set."""
        if self.render_mode != "rgb_array":
            return None
        state = self.game.state()
        channels = state.shape[-1]
        if self._palette is None:
            import seaborn  # a dependency of minatar; MinAtar's display uses this palette

            colours = [(0.0, 0.0, 0.0), *seaborn.color_palette("cubehelix", channels)]
            self._palette = (np.asarray(colours) * 255).round().astype(np.uint8)
        top = (state * np.arange(1, channels + 1)).max(axis=-1)
        return self._palette[top].repeat(CELL, axis=0).repeat(CELL, axis=1)
