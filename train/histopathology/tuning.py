"""The histopathology model's whole-backbone tuning run (``python -m train.finetune run histopathology``):
its target, validation score and augmentation, and the arrays it trains on."""

from __future__ import annotations

import numpy as np

from train import core, imaging


def score(outputs: dict[str, np.ndarray], val: dict[str, np.ndarray]) -> float:
    """Validation IDC AUC, as every histopathology candidate is rated."""
    return core.binary_metrics(val["idc"], outputs["idc"][:, 1], 0.5)["roc_auc"]


SPEC = imaging.TuningSpec(("idc",), score, imaging.tissue_augmentation, colour_constancy=False, grey=False, seed=2016,
                          epochs=32, input_size=96, source_size=50, batch_size=64, learning_rates=(2e-4,))


def arrays(backbone: str, input_size: int | None = None) -> dict[str, np.ndarray]:
    """Every patch at 50 px with its split and label, as ``python -m train.histopathology`` loads them."""
    # Imported here: a GPU machine tuning from a pack needs SPEC, not the serving decoders data.py loads with.
    from train.histopathology.data import load_data

    images, idc, split, _ = load_data()
    return {"images": images, "split": split, "idc": idc}
