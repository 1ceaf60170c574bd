"""Heatmap overlays and region tiling (no model: a fake scorer stands in)."""

import base64
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from oncoserve_runtime import ImagePreprocessing, colour_ramp, overlay_png_base64

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "functions" / "histopathology"))
from region import background_tiles, is_background, run_tiles, tile_region  # noqa: E402


def decode(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def test_colour_ramp_runs_blue_to_red():
    ramp = colour_ramp(np.array([0.0, 1.0, np.nan]))
    assert ramp[0].tolist() == [0, 0, 255] and ramp[1].tolist() == [255, 0, 0] and ramp[2].tolist() == [0, 0, 255]


def test_overlay_colours_scored_cells_only_and_caps_size():
    image = Image.new("RGB", (2000, 1000), (128, 128, 128))
    heat = np.array([[1.0, np.nan]])
    out = decode(overlay_png_base64(image, heat, max_side=400, alpha=0.5))
    assert out.shape == (200, 400, 3)
    assert out[100, 50, 0] > 180 and out[100, 50, 2] < 80  # left half: red blend
    assert out[100, 350].tolist() == [128, 128, 128]  # right half: untouched


def tissue(h, w, colour=(180, 60, 150)):
    return np.broadcast_to(np.array(colour, np.uint8), (h, w, 3)).copy()


def test_background_glass_is_not_tissue():
    assert is_background(tissue(50, 50, (240, 240, 238)))
    assert not is_background(tissue(50, 50))


def test_the_whole_image_background_pass_decides_as_the_tile_rule():
    # Tissue, glass, and tiles near both thresholds (brightness ~220, saturation ~0.08), one whole-tile grid.
    rng = np.random.default_rng(7)
    # (250, 240, 230): saturation exactly 0.08, the threshold, where float32 once decided otherwise
    tiles = [rng.integers(0, 256, (50, 50, 3)), tissue(50, 50, (240, 240, 238)), tissue(50, 50), tissue(50, 50, (250, 240, 230))]
    for level in (218, 219, 220, 221, 222):
        for spread in (15, 17, 18, 19, 21):
            base = rng.integers(level - 2, level + 3, (50, 50, 1))
            tiles.append(np.concatenate([base, base - spread // 2, base - spread], axis=-1))
    tiles = [np.clip(t, 0, 255).astype(np.uint8) for t in tiles]
    pixels = np.zeros((300, 300, 3), np.uint8)  # the rest: black (high 0: saturation 0, not bright)
    for n, piece in enumerate(tiles):
        pixels[(n // 6) * 50:(n // 6 + 1) * 50, (n % 6) * 50:(n % 6 + 1) * 50] = piece
    expected = [[is_background(pixels[r * 50:(r + 1) * 50, c * 50:(c + 1) * 50]) for c in range(6)] for r in range(6)]
    assert background_tiles(pixels, 50).tolist() == expected
    assert 0 < np.sum(expected) < 36  # both decisions are exercised


def test_tiling_covers_the_grid_and_handles_edges():
    # 120 x 130: 3 rows x 3 cols; last row is 20 px (scored, resized), last column 30 px (scored);
    # a 5 px sliver would not be.
    pixels = tissue(120, 130)
    pixels[:50, :50] = 240  # one background tile
    grid = tile_region(Image.fromarray(pixels), ImagePreprocessing(size=(50, 50)), tile=50, min_edge_tile=10)
    assert (grid.rows, grid.cols) == (3, 3)
    assert grid.background == 1 and grid.slivers == 0
    assert grid.tiles.shape == (8, 50, 50, 3) and (0, 0) not in grid.cells
    thin = tile_region(Image.fromarray(tissue(105, 100)), ImagePreprocessing(size=(50, 50)), tile=50, min_edge_tile=10)
    assert thin.slivers == 2 and len(thin.cells) == 4


def test_scoring_batches_keep_tile_order():
    tiles = np.arange(1100, dtype=np.float32)[:, None, None, None] * np.ones((1, 50, 50, 3), np.float32)
    outputs = run_tiles(lambda batch: {"p": batch[:, 0, 0, 0], "ood_score": -batch[:, 0, 0, 0]}, tiles)
    assert outputs["p"].tolist() == list(range(1100)) and outputs["ood_score"].tolist() == [-v for v in range(1100)]
    assert run_tiles(lambda batch: {"p": batch}, tiles[:0]) is None
