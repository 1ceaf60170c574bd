"""Image datasets for training: manifest → arrays exactly as the serving runtime prepares them.

Every image goes through ``oncoserve_runtime`` (``decode_image`` then ``ImagePreprocessing``, i.e.
keras-image-helper's resize), so a model never sees pixels prepared differently from production.
Arrays are cached as uint8 under ``build/<task>/`` (git-ignored) keyed by size and manifest hash.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from train.core.paths import build_dir, task_data_dir

if TYPE_CHECKING:
    from oncoserve_runtime import ImagePreprocessing


def load_manifest(task: str):
    import pandas as pd

    return pd.read_csv(task_data_dir(task) / "manifest.csv")


def prepare(path: Path, preprocessing: ImagePreprocessing, transform: Callable | None = None) -> np.ndarray:
    """One file → (H, W, 3) uint8, through the serving decode + resize (and an optional image transform)."""
    # Imported here: a GPU machine tuning from a pack has Keras but not the serving decoders.
    from oncoserve_runtime import decode_image

    image = decode_image(path.read_bytes())
    if transform is not None:
        image = transform(image)
    return preprocessing.to_array(image)[0].round().astype(np.uint8)


def load_images(task: str, relative_paths: list[str], preprocessing: ImagePreprocessing, *,
                transform: Callable | None = None, tag: str = "") -> np.ndarray:
    """All images as one uint8 array (N, H, W, 3), cached."""
    digest = hashlib.sha256("\n".join(relative_paths).encode()).hexdigest()[:12]
    width, height = preprocessing.size
    cache = build_dir(task) / f"images_{width}x{height}{tag}_{digest}.npy"
    if cache.is_file():
        return np.load(cache)
    root = task_data_dir(task)
    with ThreadPoolExecutor(max_workers=4) as pool:
        arrays = list(pool.map(lambda p: prepare(root / p, preprocessing, transform), relative_paths))
    stacked = np.stack(arrays)
    np.save(cache, stacked)
    return stacked
