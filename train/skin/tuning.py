"""The skin model's whole-backbone tuning run (``python -m train.finetune run skin``): its target,
validation score and augmentation, and the arrays it trains on."""

from __future__ import annotations

import numpy as np

from train import core, imaging


def score(outputs: dict[str, np.ndarray], val: dict[str, np.ndarray]) -> float:
    """Mean of the per-source validation AUCs, as every skin candidate is rated."""
    return core.mean_auc_by_group(val["melanoma"], outputs["melanoma"][:, 1], val["source"])


SPEC = imaging.TuningSpec(("melanoma",), score, imaging.dermoscopy_augmentation, colour_constancy=True, grey=False,
                          seed=2017, epochs=40)


def arrays(backbone: str, input_size: int | None = None) -> dict[str, np.ndarray]:
    """Images, split, labels and sources; at ``input_size`` when given, so tuning at a larger size sees
    the detail of the source images instead of 224-px images scaled up in the graph."""
    # Imported here: a GPU machine tuning from a pack needs SPEC, not the serving decoders data.py loads with.
    from train.skin.data import load_data

    data = load_data(input_size or imaging.BACKBONES[backbone].input_size)
    return {"images": data["images"], "split": data["split"], "melanoma": data["y"], "source": data["source"]}
