"""
## The out-of-distribution families, built from what is at hand offline

* ``other_tasks``: the other image tasks' test images (a dermoscopy image or an H&E patch sent to
  the brain model, and so on);
* ``photographs``: the photographs and pictures that ship inside matplotlib (``sample_data``),
  each whole and as four corner crops and a centre crop;
* ``synthetic``: uniform and Gaussian noise, blank squares of several greys and colours, rendered
  pages of text, gradients and checkerboards;
* ``corrupted``: the task's own test images after heavy corruption (strong noise, shuffled blocks,
  inverted colours, JPEG at quality 2) — near the data, so reported, not a goal.

Every image is a PIL RGB image; the evaluation sends it through the serving path's preprocessing.
Seeded: the same images every run.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

IMAGE_TASKS = ("brain", "skin", "histopathology")
PHOTOGRAPHS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png")
FAR_FAMILIES = ("other_tasks", "photographs", "synthetic")  # the goals: AUROC >= 0.99, refusal >= 95%


def test_paths(task: str, count: int, seed: int) -> list[Path]:
    """``count`` of ``task``'s test-split image files (seeded sample)."""
    from train.imaging import load_manifest
    from train.core import task_data_dir

    manifest = load_manifest(task)
    paths = manifest.loc[manifest["split"] == "test", "path"].to_numpy()
    chosen = np.random.default_rng(seed).permutation(len(paths))[:count]
    return [task_data_dir(task) / paths[i] for i in sorted(chosen)]


def decoded(path: Path) -> Image.Image:
    from oncoserve_runtime import decode_image

    return decode_image(path.read_bytes()).convert("RGB")


def other_tasks(task: str, per_task: int, seed: int) -> list[Image.Image]:
    return [decoded(p) for other in IMAGE_TASKS if other != task for p in test_paths(other, per_task, seed)]


def photographs() -> list[Image.Image]:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "sample_data"
    images = []
    for name in PHOTOGRAPHS:
        image = Image.open(folder / name).convert("RGB")
        w, h = image.size
        crops = [(0, 0, w * 3 // 5, h * 3 // 5), (w * 2 // 5, 0, w, h * 3 // 5), (0, h * 2 // 5, w * 3 // 5, h),
                 (w * 2 // 5, h * 2 // 5, w, h), (w // 5, h // 5, w * 4 // 5, h * 4 // 5)]
        images += [image] + [image.crop(box) for box in crops]
    return images


def synthetic(seed: int, side: int = 256) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    arrays = [rng.integers(0, 256, (side, side, 3), dtype=np.uint8) for _ in range(8)]
    arrays += [np.clip(rng.normal(128, 50, (side, side, 3)), 0, 255).astype(np.uint8) for _ in range(8)]
    arrays += [np.full((side, side, 3), value, np.uint8) for value in ((0, 0, 0), (255, 255, 255), (128, 128, 128),
                                                                      (200, 30, 30), (30, 30, 200), (230, 190, 160))]
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    arrays += [np.repeat(np.broadcast_to(g[..., None], (side, side, 1)), 3, axis=2).astype(np.uint8)
               for g in (ramp[None, :] + 0 * ramp[:, None], ramp[:, None] + 0 * ramp[None, :])]
    squares = (np.indices((side, side)) // 32).sum(axis=0) % 2 * 255
    arrays += [np.repeat(squares[..., None], 3, axis=2).astype(np.uint8)]
    return [Image.fromarray(a) for a in arrays] + [text_page(seed + i, side) for i in range(6)]


def text_page(seed: int, side: int) -> Image.Image:
    """A scanned-page stand-in: lines of black words on white."""
    rng = np.random.default_rng(seed)
    page = Image.new("RGB", (side, side), (250, 250, 245))
    draw = ImageDraw.Draw(page)
    words = "patient report findings slice tumour benign lesion tissue scan result normal".split()
    for line in range(side // 14):
        draw.text((6, 4 + 14 * line), " ".join(rng.choice(words, 5)), fill=(20, 20, 20))
    return page


def corrupted(images: list[Image.Image], seed: int) -> dict[str, list[Image.Image]]:
    """Each image under four heavy corruptions."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[Image.Image]] = {"noise_sigma_80": [], "shuffled_blocks": [], "inverted": [], "jpeg_quality_2": []}
    for image in images:
        pixels = np.asarray(image).astype(np.float32)
        out["noise_sigma_80"].append(Image.fromarray(np.clip(pixels + rng.normal(0, 80, pixels.shape), 0, 255).astype(np.uint8)))
        out["shuffled_blocks"].append(Image.fromarray(shuffle_blocks(pixels.astype(np.uint8), rng)))
        out["inverted"].append(Image.fromarray(255 - pixels.astype(np.uint8)))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=2)
        out["jpeg_quality_2"].append(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return out


def shuffle_blocks(pixels: np.ndarray, rng, grid: int = 4) -> np.ndarray:
    """The image cut into grid × grid blocks, put back in a random order."""
    h, w = pixels.shape[0] // grid * grid, pixels.shape[1] // grid * grid
    blocks = [pixels[r * h // grid:(r + 1) * h // grid, c * w // grid:(c + 1) * w // grid]
              for r in range(grid) for c in range(grid)]
    order = rng.permutation(len(blocks))
    rows = [np.concatenate([blocks[order[r * grid + c]] for c in range(grid)], axis=1) for r in range(grid)]
    return np.concatenate(rows, axis=0)
