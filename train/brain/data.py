"""
## Data

The slices mix CT and MRI from several public sets; PROVENANCE.md warns that CT tumour and healthy
images differ in size, colour and burned-in text, so a model can learn the source. Every image is
therefore made greyscale and resized to one fixed square input, in training and in serving alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from oncoserve_runtime import ImagePreprocessing, to_grey_rgb

from train import imaging

TASK = "brain"
TUMOR_LABELS = ["healthy", "tumor"]
MODALITIES = ["ct", "mri"]
TYPES = ["glioma", "meningioma", "pituitary"]


def mri_sources(data: dict[str, Any]) -> list[str]:
    """The ``source_dataset`` values of ``load_data``'s MRI slices, sorted."""
    return [str(s) for s in np.unique(data["source"][data["modality"] == 1])]


def load_data(backbone: str, sources: list[str] | None = None) -> dict[str, Any]:
    """Every slice of the manifest's ``sources`` (``source_dataset``; None: all), greyscale, at the
    backbone's input size, with its labels and split."""
    manifest = imaging.load_manifest(TASK)
    if sources:
        manifest = manifest[manifest["source_dataset"].isin(sources)].reset_index(drop=True)
    size = imaging.BACKBONES[backbone].input_size
    preprocessing = ImagePreprocessing(size=(size, size), scaling="none")
    images = imaging.load_images(TASK, list(manifest["path"]), preprocessing, transform=to_grey_rgb, tag="_grey")
    label = manifest["label"].to_numpy()
    return {
        "manifest": manifest,
        "preprocessing": preprocessing,
        "images": images,
        "tumor": (label != "healthy").astype(int),
        "modality": (manifest["modality"].to_numpy() == "mri").astype(int),
        "type": np.array([TYPES.index(v) if v in TYPES else -1 for v in label]),
        "split": manifest["split"].to_numpy(),
        "source": manifest["source_dataset"].to_numpy().astype(str),
    }
