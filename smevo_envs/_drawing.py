"""NumPy drawings for `render_mode="rgb_array"`: an env paints a few rows of coloured cells.

Every env but the hard maze (which has its own pygame renderer) is a handful of numbers per
step, so its frame is a grid of cells, each one colour, scaled up to square cells of a
power-of-two size (`LARGEST_CELL` pixels, less for large grids) with a gap between cells.
Frames are (height, width, 3) uint8 arrays, as Gymnasium expects.
"""

from __future__ import annotations

import abc
import math

import gymnasium as gym
import numpy as np

LARGEST_CELL = 32  # pixels per cell, the gap included, for small grids
MOST_PIXELS = 800  # larger grids get smaller cells (down to 4 pixels) to stay about this wide
GAP = 1  # background pixels on the right and bottom of every cell

BACKGROUND = (250, 250, 245)
UNKNOWN = (200, 200, 200)  # a cell with nothing to show yet
WALL = (40, 40, 40)
FREE = (255, 255, 255)
AGENT = (40, 90, 200)
GOAL = (40, 160, 60)
RIGHT = (40, 160, 60)
WRONG = (200, 50, 40)
HIGHLIGHT = (240, 190, 40)


def signed_colours(values: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Grey levels for `values` (any shape): -scale and below black, 0 mid grey, +scale and
    above white, NaN (nothing to show) `UNKNOWN`. Returns `values.shape + (3,)` uint8."""
    values = np.asarray(values, dtype=np.float64)
    unknown = np.isnan(values)
    level = np.clip(np.where(unknown, 0.0, values) / scale, -1.0, 1.0)
    grey = np.round(127.5 * (1.0 + level)).astype(np.uint8)
    colours = np.repeat(grey[..., None], 3, axis=-1)
    colours[unknown] = UNKNOWN
    return colours


def filled(shape: tuple[int, ...], colour: tuple[int, int, int]) -> np.ndarray:
    """A `shape` grid of cells all of one colour: `shape + (3,)` uint8."""
    return np.broadcast_to(np.array(colour, dtype=np.uint8), (*shape, 3)).copy()


def square(values: np.ndarray) -> np.ndarray:
    """A 1-d array laid out row-major on the smallest square grid that holds it; NaN pads
    the cells past its end (`signed_colours` shows them as `UNKNOWN`)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    side = max(1, math.ceil(math.sqrt(len(flat))))
    padded = np.full(side * side, np.nan)
    padded[: len(flat)] = flat
    return padded.reshape(side, side)


def frame(*rows: np.ndarray) -> np.ndarray:
    """One image of grids of cells (each `(rows, columns, 3)` uint8) stacked top to bottom,
    left-aligned, one empty cell row apart."""
    width = max(grid.shape[1] for grid in rows)
    blank = filled((1, width), BACKGROUND)
    parts = []
    for i, grid in enumerate(rows):
        if i:
            parts.append(blank)
        padding = filled((grid.shape[0], width - grid.shape[1]), BACKGROUND)
        parts.append(np.concatenate([grid, padding], axis=1))
    cells = np.concatenate(parts, axis=0)
    cell = LARGEST_CELL
    while cell > 4 and cell * max(cells.shape[:2]) > MOST_PIXELS:
        cell //= 2
    image = np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)
    image[cell - GAP :: cell, :] = BACKGROUND
    image[:, cell - GAP :: cell] = BACKGROUND
    return image


def beside(*grids: np.ndarray) -> np.ndarray:
    """Grids of cells side by side, top-aligned, one empty cell column apart."""
    height = max(grid.shape[0] for grid in grids)
    parts = []
    for i, grid in enumerate(grids):
        if i:
            parts.append(filled((height, 1), BACKGROUND))
        padding = filled((height - grid.shape[0], grid.shape[1]), BACKGROUND)
        parts.append(np.concatenate([grid, padding], axis=0))
    return np.concatenate(parts, axis=1)


class RendersCells(abc.ABC):
    """`render()` for envs drawn as cells: the frame of the grids `_cells()` returns."""

    render_mode: str | None

    def render(self) -> np.ndarray | None:
        """The current state as an (H, W, 3) uint8 frame (`render_mode="rgb_array"`)."""
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array' to gym.make"
            )
            return None
        return frame(*self._cells())

    @abc.abstractmethod
    def _cells(self) -> list[np.ndarray]:
        """The grids of cells to draw, top to bottom (each `(rows, columns, 3)` uint8)."""
