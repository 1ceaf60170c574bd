"""
## Data

Edge patches of the original dataset are smaller than 50x50 (e.g. 50x42); like the original
CancerNet pipeline they are resized to the network input (here with keras-image-helper's filter,
which the serving runtime uses too). The region route resizes partial edge tiles the same way.
Splits are by patient (no patient in two splits).
"""

from __future__ import annotations

import numpy as np

from oncoserve_runtime import ImagePreprocessing

from train import imaging

TASK = "histopathology"
LABELS = ["non_idc", "idc"]
PATCH = 50
PREPROCESSING = ImagePreprocessing(size=(PATCH, PATCH), scaling="none")  # in-graph Rescaling


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every patch at 50x50 with its label, split and patient, in manifest order."""
    manifest = imaging.load_manifest(TASK)
    images = imaging.load_images(TASK, list(manifest["path"]), PREPROCESSING)
    return images, manifest["label"].to_numpy(), manifest["split"].to_numpy(), manifest["patient_id"].to_numpy()


def load_splits(limit: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    images, labels, split, patients = load_data()
    splits = {}
    for name in ("train", "val", "test"):
        rows = np.flatnonzero(split == name)
        if limit:
            rows = rows[:limit]
        splits[name] = (images[rows], labels[rows], patients[rows])
    return splits


def patch_positions(paths) -> np.ndarray:
    """(n, 2) x, y of each patch on its slide, from the dataset's file names (``…_x1051_y801_class1.png``)."""
    import pandas as pd

    return pd.Series(list(paths)).str.extract(r"_x(\d+)_y(\d+)_").astype(int).to_numpy()


def split_positions(name: str, limit: int | None = None) -> np.ndarray:
    """``patch_positions`` of one split's patches, in ``load_splits``' order."""
    manifest = imaging.load_manifest(TASK)
    return patch_positions(manifest.loc[manifest["split"] == name, "path"])[:limit or None]


def stitched_region(images: np.ndarray, labels: np.ndarray, rows: int, cols: int, seed: int):
    """A synthetic region: a rows x cols grid of held-out 50x50 patches (label grid returned too)."""
    rng = np.random.default_rng(seed)
    full = np.flatnonzero([img.shape[:2] == (PATCH, PATCH) for img in images])
    chosen = rng.choice(full, rows * cols, replace=False)
    region = images[chosen].reshape(rows, cols, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
    return region.reshape(rows * PATCH, cols * PATCH, 3), labels[chosen].reshape(rows, cols)
