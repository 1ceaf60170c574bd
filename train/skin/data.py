"""
## Data

Two sources mixed — HAM10000 (CC BY-NC 4.0) and ISIC 2017 (CC0) — with lesion and near-duplicate
grouped splits; a model trained on one transfers badly to the other, so every figure is reported
per source too.
"""

from __future__ import annotations

from typing import Any

from oncoserve_runtime import ImagePreprocessing

from train import imaging

TASK = "skin"
LABELS = ["benign", "melanoma"]
SOURCES = ["HAM10000", "ISIC2017"]
SOURCE_NAMES = {"HAM10000": "HAM10000", "ISIC2017": "ISIC 2017"}  # as the card writes them


def load_data(size: int) -> dict[str, Any]:
    """Every image at ``size`` px square (keras-image-helper's resize, as served), labels, source and split."""
    manifest = imaging.load_manifest(TASK)
    preprocessing = ImagePreprocessing(size=(size, size), scaling="none")
    return {"preprocessing": preprocessing, "images": imaging.load_images(TASK, list(manifest["path"]), preprocessing),
            "y": (manifest["label"].to_numpy() == "melanoma").astype(int),
            "source": manifest["source_dataset"].to_numpy(), "split": manifest["split"].to_numpy()}
