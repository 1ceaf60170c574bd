"""Test slides: a pyramidal tiled TIFF built from one patient's IDC patches, each placed where its
file name says it was cut (``<patient>_idx5_x<X>_y<Y>_class<C>.png``, coordinates at the patches'
own ~4 µm/px), on glass; so a test knows which tiles hold tissue, and their labels.

Level 0 is the patch canvas upsampled ``upsample`` times (nearest), at ``4 / upsample`` µm/px, with
the resolution tags a scanner writes; level 1 (``pyramid=True``) is the canvas itself at 4 µm/px.
``levels`` builds deeper pyramids (a 40x scan's 0.25, 1 and 4 µm/px).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

GLASS = (236, 234, 238)  # bright, unsaturated: what an empty slide looks like
_NAME = re.compile(r"_x(\d+)_y(\d+)_class(\d)")


@dataclass(frozen=True)
class SlidePatch:
    path: Path
    row: int
    col: int
    label: int


def patient_patches(shared_data: Path, patient: int, tile: int = 50) -> list[SlidePatch]:
    """The patient's full-size patches, on the 50-px grid their coordinates lie on."""
    import pandas as pd

    manifest = pd.read_csv(shared_data / "histopathology" / "manifest.csv")
    patches = []
    for relative in manifest.loc[manifest["patient_id"] == patient, "path"]:
        x, y, label = map(int, _NAME.search(relative).groups())
        path = shared_data / "histopathology" / relative
        with Image.open(path) as image:
            if image.size != (tile, tile):
                continue  # the dataset's edge pieces: not on the grid
        patches.append(SlidePatch(path, (y - 1) // tile, (x - 1) // tile, label))
    return patches


def dense_patches(shared_data: Path, side_tiles: int, seed: int = 0) -> list[SlidePatch]:
    """A ``side_tiles`` square of full-size test-split patches (drawn with a seed), no glass: a
    benchmark slide whose every tile is tissue."""
    import pandas as pd

    manifest = pd.read_csv(shared_data / "histopathology" / "manifest.csv")
    test = manifest[manifest["split"] == "test"].sample(n=side_tiles * side_tiles, replace=True, random_state=seed)
    return [SlidePatch(shared_data / "histopathology" / path, i // side_tiles, i % side_tiles, int(label))
            for i, (path, label) in enumerate(zip(test["path"], test["label"]))]


def write_slide(path: Path, patches: list[SlidePatch], *, upsample: int = 2, pyramid: bool = True,
                state_mpp: bool = True, tile: int = 50, margin_tiles: int = 2, levels: tuple[int, ...] | None = None) -> None:
    """A tiled (256 px), deflate-compressed pyramidal TIFF of ``patches`` on glass. ``levels``: each
    level's upsampling of the 4 µm/px canvas, finest first (default ``(upsample, 1)``, or
    ``(upsample,)`` without a pyramid); e.g. ``(16, 4, 1)`` is a 40x scan's 0.25, 1 and 4 µm/px. Levels
    are written tile by tile, so a 40,000 x 40,000 px level 0 never sits in memory."""
    import tifffile

    rows = max(p.row for p in patches) + 1 + margin_tiles
    cols = max(p.col for p in patches) + 1 + margin_tiles
    canvas = np.empty((rows * tile, cols * tile, 3), np.uint8)
    canvas[:] = GLASS
    for patch in patches:
        piece = np.asarray(Image.open(patch.path).convert("RGB").resize((tile, tile)))  # edge pieces, if any
        canvas[patch.row * tile:(patch.row + 1) * tile, patch.col * tile:(patch.col + 1) * tile] = piece
    levels = levels or ((upsample, 1) if pyramid else (upsample,))
    options = {"tile": (TIFF_TILE, TIFF_TILE), "compression": "zlib", "photometric": "rgb", "dtype": np.uint8}

    def resolution(mpp: float) -> dict:
        return {"resolution": (1e4 / mpp, 1e4 / mpp), "resolutionunit": "CENTIMETER"} if state_mpp else {}

    with tifffile.TiffWriter(path, bigtiff=canvas.nbytes * levels[0] ** 2 > 2**31) as tif:
        for number, factor in enumerate(levels):
            shape = (canvas.shape[0] * factor, canvas.shape[1] * factor, 3)
            place = {"subifds": len(levels) - 1} if number == 0 else {"subfiletype": 1}
            tif.write(_level_tiles(canvas, factor), shape=shape, **place, **resolution(4.0 / factor), **options)


TIFF_TILE = 256


def _level_tiles(canvas: np.ndarray, factor: int) -> Iterator[np.ndarray]:
    """The canvas upsampled ``factor`` times (nearest), as TIFF tiles in row-major order (edge tiles
    padded with the edge's pixels, which readers crop)."""
    height, width = canvas.shape[0] * factor, canvas.shape[1] * factor
    for top in range(0, height, TIFF_TILE):
        rows = np.minimum(np.arange(top, top + TIFF_TILE), height - 1) // factor
        for left in range(0, width, TIFF_TILE):
            columns = np.minimum(np.arange(left, left + TIFF_TILE), width - 1) // factor
            yield canvas[rows[:, None], columns[None, :]]
