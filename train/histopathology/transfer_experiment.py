"""
Title: IDC patches — does an ImageNet MobileNetV2 on upscaled patches beat CancerNet?
Description: the issue's "MobileNetV2 on upscaled patches", measured on validation patients with
    the same rules as the CancerNet candidates; the result goes into the histopathology model card.
Accelerator: none (≈ 6 minutes on 2 CPU cores: 50 px patches upscaled to 96 px, the backbone's
    last stage fine-tuned on cached maps).

## Introduction

ImageNet features are built for objects at 224 px; IDC patches are 50 px of tissue texture. Two
ways of using the backbone are measured: frozen features + logistic regression, and the last stage
(blocks 14-16 + Conv_1) fine-tuned on cached maps of original and mirrored/flipped training patches.
(Every layer tuned on the patches is a third way: ``make finetune-histopathology``, then a
candidate of ``train.histopathology`` itself.) The shipped model is chosen by validation AUC across
all candidates; this script does not ship anything, it records its candidates in ``training.json`` (``training.experiments``) and re-renders
the card, so the comparison is reproducible from one command (``make experiment-histopathology``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from train import core, imaging
from train.histopathology.card import write_card
from train.histopathology.data import PATCH, TASK, load_splits
from train.histopathology.evaluate import MIN_SENSITIVITY


def validation_figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    threshold = core.choose_threshold(y, p, min_sensitivity=MIN_SENSITIVITY)["threshold"]
    m = core.binary_metrics(y, p, threshold)
    return {"val_auc": m["roc_auc"], "val_sensitivity": m["sensitivity"], "val_specificity": m["specificity"],
            "val_balanced_accuracy": m["balanced_accuracy"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure MobileNetV2 on upscaled IDC patches (validation only).")
    parser.add_argument("--backbone", default="mobilenet_v2", choices=sorted(imaging.BACKBONES))
    parser.add_argument("--weights", default=None, help="weights file, 'imagenet' (Keras cache) or 'none'")
    parser.add_argument("--size", type=int, default=96, help="backbone input size the 50 px patches are upscaled to")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=2016)
    args = parser.parse_args(argv)
    started = time.time()
    core.seed_everything(args.seed)
    splits = load_splits()
    (x_train, y_train, _), (x_val, y_val, _) = splits["train"], splits["val"]

    extractor = imaging.build_feature_extractor(args.backbone, args.weights, input_size=args.size, source_size=PATCH)
    lower, upper = imaging.split_extractor(extractor, args.backbone)
    tag = f"{args.backbone}_{args.size}"
    maps_train = imaging.cached_maps(TASK, f"{tag}_train", lower, x_train)
    maps_val = imaging.cached_maps(TASK, f"{tag}_val", lower, x_val)
    # Tissue has no orientation: mirrored and flipped copies are the augmentation.
    mirrored = imaging.cached_maps(TASK, f"{tag}_train_mirrored", lower, x_train[:, :, ::-1])
    flipped = imaging.cached_maps(TASK, f"{tag}_train_flipped", lower, x_train[:, ::-1])

    """
    ## Frozen features + logistic regression (C chosen on validation AUC)
    """
    from sklearn.linear_model import LogisticRegression

    pooled_train, pooled_val = imaging.pooled_outputs(upper, maps_train), imaging.pooled_outputs(upper, maps_val)
    frozen = max((validation_figures(y_val, LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
                                     .fit(pooled_train, y_train).predict_proba(pooled_val)[:, 1]) | {"C": c}
                  for c in (0.01, 0.1, 1.0)), key=lambda r: r["val_auc"])
    print(f"frozen: {frozen}", flush=True)

    """
    ## Last stage fine-tuned (class-balanced through equal-sized mirrored copies; early stopping)
    """
    x = np.concatenate([maps_train, mirrored, flipped]).astype(np.float32)
    y = np.concatenate([y_train] * 3)
    fine_tuning = imaging.fine_tune_top(extractor, upper, x, {"idc": y}, (maps_val.astype(np.float32), {"idc": y_val}),
                                         learning_rate=args.learning_rate, epochs=args.epochs, seed=args.seed)
    # Score with the temporary head the fine-tuning trained is not kept; a logistic head on the
    # fine-tuned pooled features is what a shipped model would use (linear, CAM-ready).
    tuned_train, tuned_val = imaging.pooled_outputs(upper, maps_train), imaging.pooled_outputs(upper, maps_val)
    tuned = max((validation_figures(y_val, LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
                                    .fit(tuned_train, y_train).predict_proba(tuned_val)[:, 1]) | {"C": c}
                 for c in (0.01, 0.1, 1.0)), key=lambda r: r["val_auc"])
    print(f"last stage fine-tuned: {tuned}", flush=True)

    experiments = {
        f"{args.backbone}_{args.size}px_frozen": {**frozen, "head": "logistic regression (class-balanced)"},
        f"{args.backbone}_{args.size}px_last_stage_tuned": {
            **tuned, "head": "logistic regression (class-balanced)",
            "fine_tuning": {k: fine_tuning[k] for k in ("epochs_run", "best_epoch", "learning_rate", "trainable_weights")}},
    }
    record(experiments, {"backbone": args.backbone, "weights": args.weights or "default", "size": args.size,
                         "seed": args.seed, "seconds": round(time.time() - started, 1),
                         "command": "make experiment-histopathology"})


def record(experiments: dict[str, Any], run: dict[str, Any]) -> None:
    """Add the experiments to training.json without touching the shipped model, re-render the card."""
    def add(record: dict[str, Any]) -> None:
        record["training"]["experiments"] = {"run": run, "candidates": experiments}

    write_card(core.update_training_record(TASK, add))


if __name__ == "__main__":
    main()
