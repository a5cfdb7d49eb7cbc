"""Whether and how an agent can be shown here: in a window (a display, an env with a "human"
or "rgb_array" render mode) or in a video file (.gif, or .mp4 with imageio-ffmpeg). Used by
``smevo watch`` and by the hint a finished run ends with."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

VIDEO_SUFFIXES = (".gif", ".mp4")


def check_video_path(path: Path) -> None:
    """A `ValueError` unless frames can be written to `path`: a .gif (always), or a .mp4
    when imageio-ffmpeg is installed. Checked before the agent acts, not after."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"--record {path}: the file must end in {' or '.join(VIDEO_SUFFIXES)}")
    if suffix == ".mp4" and importlib.util.find_spec("imageio_ffmpeg") is None:
        raise ValueError(
            f"--record {path}: writing .mp4 needs imageio-ffmpeg: pip install imageio-ffmpeg "
            "(or record a .gif)"
        )


def video_writer(path: Path, fps: float) -> Any:
    """An imageio writer that streams frames to `path` (checked by `check_video_path`)."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        return imageio.get_writer(path, mode="I", duration=1000.0 / fps, loop=0)
    return imageio.get_writer(path, fps=fps)


HEADLESS_SDL_DRIVERS = ("dummy", "offscreen")
"""SDL video drivers that open no window (pygame draws Gymnasium's windows through SDL)."""


def display_problem() -> str | None:
    """Why no window can open here, or None: SDL told to draw nowhere, or a Linux session
    with neither an X11 nor a Wayland display."""
    driver = os.environ.get("SDL_VIDEODRIVER", "").lower()
    if driver in HEADLESS_SDL_DRIVERS:
        return f"SDL_VIDEODRIVER={driver} opens no window"
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return "no display here (DISPLAY and WAYLAND_DISPLAY are unset)"
    return None


def render_modes(env_id: str) -> list[str]:
    """The render modes a registered env's class declares, read from its spec without
    making an env; [] when unknown (an id that is not registered, e.g. a factory)."""
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    name = env_id.rpartition(":")[2]
    if name not in gym.registry:
        return []
    entry = gym.spec(name).entry_point
    try:
        creator = load_env_creator(entry) if isinstance(entry, str) else entry
    except (ImportError, AttributeError, gym.error.Error):
        return []
    return list(getattr(creator, "metadata", {}).get("render_modes") or [])


def unshowable(env_id: str, modes: Sequence[str], record: bool) -> str | None:
    """Why `env_id`, whose render modes are `modes`, cannot be recorded (`record`) or shown
    in a window, or None. A window needs "human", or "rgb_array" shown by Gymnasium's
    `HumanRendering`; a video needs "rgb_array"."""
    needed = ("rgb_array",) if record else ("human", "rgb_array")
    if any(mode in modes for mode in needed):
        return None
    return (
        f"{env_id} cannot be {'recorded' if record else 'shown'}: it has no "
        f"{' or '.join(needed)} render (its render modes: {', '.join(modes) or 'none'})"
    )
