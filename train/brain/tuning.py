"""The brain model's whole-backbone tuning run (``python -m train.finetune run brain``): its targets,
validation score and augmentation, and the arrays it trains on."""

from __future__ import annotations

import numpy as np

from train import core, imaging


def score(outputs: dict[str, np.ndarray], val: dict[str, np.ndarray]) -> float:
    """Mean of the validation tumour AUC on CT, on MRI and the MRI type accuracy, each MRI figure the
    mean over the MRI sources (each source counts the same, whatever its size; issue 32)."""
    ct, mri = val["modality"] == 0, val["modality"] == 1
    typed = val["tumor_type"] >= 0
    ct_auc = core.binary_metrics(val["tumor"][ct], outputs["tumor"][ct, 1], 0.5)["roc_auc"]
    mri_auc = core.mean_auc_by_group(val["tumor"][mri], outputs["tumor"][mri, 1], val["source"][mri])
    type_accuracy = core.mean_accuracy_by_group(val["tumor_type"][typed], outputs["tumor_type"][typed].argmax(1),
                                                val["source"][typed])
    return float(np.mean([ct_auc, mri_auc, type_accuracy]))


SPEC = imaging.TuningSpec(("tumor", "modality", "tumor_type"), score, imaging.anatomy_augmentation,
                          colour_constancy=False, grey=True, seed=2024, epochs=12)


def arrays(backbone: str, input_size: int | None = None) -> dict[str, np.ndarray]:
    """Images, split and labels as ``python -m train.brain`` loads them (the shipped sources)."""
    # Imported here: a GPU machine tuning from a pack needs SPEC, not the serving decoders data.py loads with.
    from train.brain.data import load_data

    data = load_data(backbone, core.Release.load("brain").options.get("sources"))
    return {"images": data["images"], "split": data["split"], "tumor": data["tumor"],
            "modality": data["modality"], "tumor_type": data["type"],
            "source": data["source"]}
