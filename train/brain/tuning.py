"""The brain model's whole-backbone tuning run (``python -m train.finetune run brain``): its targets,
validation score and augmentation, and the arrays it trains on."""

from __future__ import annotations

import numpy as np

from train import core, imaging


def score(outputs: dict[str, np.ndarray], val: dict[str, np.ndarray]) -> float:
    """Mean of the validation tumour AUC on CT, on MRI, and the MRI type accuracy: the three things
    issue 4 asks of the brain model."""
    tumour_auc = [core.binary_metrics(val["tumor"][val["modality"] == m], outputs["tumor"][val["modality"] == m, 1],
                                      0.5)["roc_auc"] for m in (0, 1)]
    typed = val["tumor_type"] >= 0
    type_accuracy = float((outputs["tumor_type"][typed].argmax(1) == val["tumor_type"][typed]).mean())
    return float(np.mean([*tumour_auc, type_accuracy]))


SPEC = imaging.TuningSpec(("tumor", "modality", "tumor_type"), score, imaging.anatomy_augmentation,
                          colour_constancy=False, grey=True, seed=2024, epochs=12)


def arrays(backbone: str, input_size: int | None = None) -> dict[str, np.ndarray]:
    """Images, split and labels as ``python -m train.brain`` loads them (the shipped sources)."""
    # Imported here: a GPU machine tuning from a pack needs SPEC, not the serving decoders data.py loads with.
    from train.brain.data import load_data

    data = load_data(backbone, core.Release.load("brain").options.get("sources"))
    return {"images": data["images"], "split": data["split"], "tumor": data["tumor"],
            "modality": data["modality"], "tumor_type": data["type"]}
