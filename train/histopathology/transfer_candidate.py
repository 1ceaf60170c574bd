"""
## The transfer candidate

MobileNetV2 whose every layer ``train.finetune`` tuned on augmented IDC patches (committed weights),
under a linear head fitted on its pooled features.
"""

from __future__ import annotations

from typing import Any

from train import core, imaging
from train.histopathology.data import PATCH, TASK

TRANSFER = "mobilenet_v2_tuned"  # the candidate built on a backbone tuned by train.finetune (any input size)
REGION_SCORE = "ood_region_score"  # the score a tiled image is judged by as a whole, when not the tiles' own
TRANSFER_SIZE = 96  # backbone input (50 px patches upscaled in-graph) when the tuning record does not say


def train_transfer_candidate(splits, *, backbone: str, weights: str, tuning: dict[str, Any], size: int, seed: int,
                             ood_method: str):
    """MobileNetV2 whose every layer ``train.finetune`` tuned on augmented IDC patches (50 px
    upscaled in-graph to ``size``, the side it was tuned at, so the served model still takes 50x50 patches), then a
    linear softmax head fitted on its pooled features, L2 chosen on validation AUC, and the
    out-of-distribution score (``core.ood``, ``ood_method``) of the pooled map of the backbone's ``ood_layer``
    (``imaging.BACKBONES``; the last map when it names none; with a nearest-neighbour score a one-colour patch scores
    farthest); outputs ``probabilities``,
    ``ood_score`` and, unless that is the density, the density as ``ood_region_score``. Returns the model, the
    tuning run's per-epoch curves (from ``tuning``, that run's record) and each score's constants by output."""
    import keras
    from keras import layers

    extractor = imaging.build_feature_extractor(backbone, weights, input_size=size, source_size=PATCH)
    tag = f"{imaging.cache_tag(backbone, weights)}_{size}"
    features = {name: imaging.pooled_features(TASK, f"{tag}_{name}", extractor, splits[name][0])
                for name in ("train", "val")}
    y_val = splits["val"][1]
    head = imaging.select_linear_head(
        features["train"], splits["train"][1], 2, val=(features["val"], y_val), seed=seed, name="probabilities",
        score=lambda p: core.binary_metrics(y_val, p[:, 1], 0.5)["roc_auc"])
    ood_layer = imaging.BACKBONES[backbone].ood_layer
    ood_train = (imaging.guard_training_features(TASK, tag, extractor, ood_layer, splits["train"][0]) if ood_layer
                 else features["train"])
    classes = splits["train"][1].astype(str)
    guards = {"ood_score": core.ood.fit(ood_method, ood_train, classes)}
    if ood_method != "mahalanobis":  # a whole image is judged by the density, which keeps photos apart (card)
        guards[REGION_SCORE] = core.ood.fit_feature_density(ood_train, classes)
    # A one-colour square can lie next to a dark training patch: with a nearest-neighbour score it scores farthest
    # (the Mahalanobis-only build is v1.4.0's graph, without the rule).
    inputs = keras.Input((PATCH, PATCH, 3), name="patch")
    pixels = inputs if REGION_SCORE in guards else None
    feature_map, tap_map = imaging.guard_maps(extractor, inputs, ood_layer)
    outputs = {"probabilities": head["dense"](layers.GlobalAveragePooling2D()(feature_map)),
               **{name: core.ood.score_layer(params, tap_map, images=pixels, name=name) for name, params in guards.items()}}
    model = keras.Model(inputs, outputs, name=TRANSFER)
    history = {"loss": tuning.get("train_loss", []), "val_idc_auc": tuning.get("val_score", [])}
    print(f"[{TRANSFER}] linear head l2={head['l2']:g}", flush=True)
    return model, history, guards


def transfer_size(tuning: dict[str, Any]) -> int:
    """The backbone input side the weights were tuned at (records before ``--input-size`` existed: 96)."""
    return int(tuning.get("input_size", TRANSFER_SIZE))


def transfer_spec(backbone: str, size: int) -> dict[str, Any]:
    """The transfer candidate described in the columns of the CancerNet candidates."""
    return {"network": f"{backbone} at {size} px, every layer tuned, + linear head", "optimizer": "adam",
            "stain_jitter": True, "per_image_norm": False}
