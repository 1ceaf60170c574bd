"""
## Features and heads

The backbone's pooled features (frozen, or its last stage tuned again on cached maps), then one
linear head per question — tumour, modality, MRI tumour type — each with its L2 chosen on validation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train import core, imaging
from train.brain.data import TASK


def backbone_features(args, data: dict[str, Any], extractor) -> tuple[np.ndarray, dict[str, Any]]:
    """(pooled features of every image, the fine-tuning record): frozen unless ``--fine-tune-epochs``."""
    tag = feature_cache_tag(args.backbone, args.weights, args.sources)
    if not args.fine_tune_epochs:
        return imaging.pooled_features(TASK, tag, extractor, data["images"]), {"run": False}
    # All three targets at once; untyped tumours and the type head: label -1, ignored.
    tuned = imaging.fine_tune_last_stage(
        TASK, tag, extractor, args.backbone, data["images"], data["split"],
        {"tumor": data["tumor"], "modality": data["modality"], "tumor_type": data["type"]},
        augmentations=imaging.MIRRORED, learning_rate=args.learning_rate, epochs=args.fine_tune_epochs, seed=args.seed)
    return tuned.pooled, tuned.summary


def feature_cache_tag(backbone: str, weights: str | None, sources: list[str] | None) -> str:
    """Names a brain feature cache: backbone, weights and the sources (caches are reused while the
    image count matches, so two source sets must not share one)."""
    named = f"_{'+'.join(sorted(sources))}" if sources else ""
    return f"{imaging.cache_tag(backbone, weights)}_grey{named}"


def fit_heads(features: np.ndarray, data: dict[str, Any], seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(heads for ``imaging.build_cam_model``, the L2 and validation score each was chosen with):
    AUC rates the binary heads, accuracy the tumour type (on typed tumours only). The tumour AUC is
    the mean over three groups, CT and each MRI source; the type accuracy the mean over the MRI
    sources: every source counts the same, whatever its size."""
    split = data["split"]
    train, val = split == "train", split == "val"
    typed = data["type"] >= 0
    group = np.char.add(np.where(data["modality"] == 1, "mri:", "ct:"), data["source"])
    heads, choices = {}, {}
    for name, target, rows, n_classes in (("tumor", data["tumor"], np.ones_like(train), 2),
                                          ("modality", data["modality"], np.ones_like(train), 2),
                                          ("tumor_type", data["type"], typed, 3)):
        y_val, groups = target[val & rows], group[val & rows]

        def score(p: np.ndarray) -> float:
            if name == "modality":
                return core.binary_metrics(y_val, p[:, 1], 0.5)["roc_auc"]
            if name == "tumor":
                return core.mean_auc_by_group(y_val, p[:, 1], groups)
            return core.mean_accuracy_by_group(y_val, p.argmax(1), groups)

        best = imaging.select_linear_head(features[train & rows], target[train & rows], n_classes,
                                          val=(features[val & rows], y_val), score=score, seed=seed, name=name)
        heads[name] = {"dense": best["dense"], "cam_class": 1 if name == "tumor" else None}
        choices[name] = {"l2": best["l2"], "val_score": best["score"]}
    return heads, choices
