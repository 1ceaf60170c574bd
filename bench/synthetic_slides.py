"""Test slides: a pyramidal tiled TIFF built from one patient's IDC patches, each placed where its
file name says it was cut (``<patient>_idx5_x<X>_y<Y>_class<C>.png``, coordinates at the patches'
own ~4 µm/px), on glass; so a test knows which tiles hold tissue, and their labels.

Level 0 is the patch canvas upsampled ``upsample`` times (nearest), at ``4 / upsample`` µm/px, with
the resolution tags a scanner writes; level 1 (``pyramid=True``) is the canvas itself at 4 µm/px.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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
                state_mpp: bool = True, tile: int = 50, margin_tiles: int = 2) -> None:
    """A tiled (256 px), deflate-compressed pyramidal TIFF of ``patches`` on glass."""
    import tifffile

    rows = max(p.row for p in patches) + 1 + margin_tiles
    cols = max(p.col for p in patches) + 1 + margin_tiles
    canvas = np.empty((rows * tile, cols * tile, 3), np.uint8)
    canvas[:] = GLASS
    for patch in patches:
        piece = np.asarray(Image.open(patch.path).convert("RGB").resize((tile, tile)))  # edge pieces, if any
        canvas[patch.row * tile:(patch.row + 1) * tile, patch.col * tile:(patch.col + 1) * tile] = piece
    level0 = canvas.repeat(upsample, axis=0).repeat(upsample, axis=1)
    options = {"tile": (256, 256), "compression": "zlib", "photometric": "rgb"}

    def resolution(mpp: float) -> dict:
        return {"resolution": (1e4 / mpp, 1e4 / mpp), "resolutionunit": "CENTIMETER"} if state_mpp else {}

    with tifffile.TiffWriter(path) as tif:
        tif.write(level0, subifds=1 if pyramid else 0, **resolution(4.0 / upsample), **options)
        if pyramid:
            tif.write(canvas, subfiletype=1, **resolution(4.0), **options)
