"""
Title: Brain CT/MRI — tumour vs healthy (recall first) and MRI tumour type
Description: ImageNet backbone (MobileNetV2 by default; Xception as in the seed when its weights
    are given) — as shipped, the one tuned end to end by ``train.finetune`` (train/weights/brain),
    else frozen or with its last stage fine-tuned on cached maps — linear heads for tumour, modality and
    MRI type; per-modality thresholds for tumour recall >= 0.99 on validation (goal: 0.98 on test),
    for MRI within every MRI source; per-source and leave-one-source-out figures; class-activation
    maps from the same graph.
Accelerator: none (≈ 9 minutes on 2 CPU cores, ≈ 14 with ``--fine-tune-epochs 15``).

## Introduction

The seed ("Brain Cancer Detection with Deep Learning") puts a dense softmax on Xception features and
ranks recall first: a missed tumour is the costly error. Every image is made greyscale and resized
to one fixed square input (``data``), in training and in serving alike, and robustness to size and
colour is measured (``evaluate``).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from train import core, imaging
from train.brain.card import write_card, write_plots
from train.brain.data import MODALITIES, TASK, TUMOR_LABELS, TYPES, load_data, mri_sources
from train.brain.evaluate import choose_thresholds, evaluate_variant, robustness_checks, test_metrics
from train.brain.heads import backbone_features, feature_cache_tag, fit_heads
from train.brain.sources import leave_one_source_out
from train.ood.evaluate import guard_contract


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the brain CT/MRI model (linear heads on a tuned backbone).")
    parser.add_argument("--backbone", default="mobilenet_v2", choices=sorted(imaging.BACKBONES))
    parser.add_argument("--weights", default=None, help="weights file, 'imagenet' (Keras cache) or 'none'")
    parser.add_argument("--sources", nargs="+", help="manifest source_dataset values to train and report on (shipped: release.yaml)")
    # Off by default: the tuned model (15 epochs) had better validation and test AUCs but missed the
    # MRI recall floor on test (0.969); see the model card.
    parser.add_argument("--fine-tune-epochs", type=int, default=0, help="0 = frozen backbone (default); try 15")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="for fine-tuning the last stage")
    parser.add_argument("--ood-layer", help="backbone layer whose pooled map the guard scores (shipped: release.yaml; "
                        "'last': the last map)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--card-only", action="store_true")
    args = core.parse_shipped_args(parser, TASK, argv)
    if args.card_only:
        return write_card(core.read_model_json(TASK))
    started = time.time()
    core.seed_everything(args.seed)
    data = load_data(args.backbone, args.sources)
    split = data["split"]
    print({s: int((split == s).sum()) for s in ("train", "val", "test")}, flush=True)

    # ## Features and linear heads, chosen on validation
    extractor = imaging.build_feature_extractor(args.backbone, args.weights)
    features, fine_tuning = backbone_features(args, data, extractor)
    heads, choices = fit_heads(features, data, args.seed)
    ood_layer, ood_features = guard_features(args, data, extractor, features)
    density = core.ood.fit_feature_density(ood_features, ood_groups(data)[split == "train"])
    model = imaging.build_cam_model(extractor, heads, ood=density, ood_layer=ood_layer)
    core.export_saved_model(model, TASK)  # for `make bench` (TensorFlow and ONNX Runtime baselines)

    # ## Convert, threshold on validation, evaluate on test (through TFLite)
    rng = np.random.default_rng(args.seed)
    samples = data["images"][rng.permutation(np.flatnonzero(split == "train"))[:100]].astype(np.float32)
    shipped = core.convert_and_choose(
        TASK, model, samples, evaluate=lambda content: evaluate_variant(content, data),
        metric_keys=("test_auc_ct", "test_auc_mri"), latency_key="latency_ms_1_image_1_thread",
        latency_batch=data["images"][np.flatnonzero(split == "test")[:1]].astype(np.float32), latency_runs=20)
    outputs = shipped.outputs[shipped.name]
    thresholds = choose_thresholds(data, outputs["val"])
    metrics, type_confusion = test_metrics(data, outputs["test"], thresholds)
    robustness = robustness_checks(shipped.model.content, data, split == "test", thresholds, args.seed)
    metrics["test_robustness"] = {**robustness, "slice": "test images, label agreement after a nuisance change"}
    if len(mri_sources(data)) > 1:
        metrics["leave_one_source_out"] = leave_one_source_out(data, args.backbone, args.seed)
    ood = guard_contract(TASK, shipped.model.content, density, outputs["val"]["ood_score"],
                         features=guard_features_text(ood_layer), output=contract_output(thresholds),
                         preprocessing=contract_preprocessing(args.backbone, data), seed=args.seed)
    plots = write_plots(data, split == "test", outputs["test"], thresholds, type_confusion, shipped.model.content,
                        args.seed)

    # ## model.json, training.json and the card
    backbone_tuning = imaging.recorded_fine_tuning(args.weights)  # weights from `train.finetune` carry its record
    training = {"seed": args.seed, "backbone": args.backbone, "weights": args.weights or "default",
                "sources": args.sources, "heads": choices, "thresholds": thresholds,
                "command": "make train-brain", "fine_tuning": fine_tuning, **backbone_tuning,
                "seconds": round(time.time() - started, 1)}
    metadata = core.model_metadata(
        core.Release.load(TASK), vars(args), name_fields={"backbone": args.backbone.replace("_", "")},
        artifact=core.artifact_entry(shipped.model), input=contract_input(data),
        preprocessing=contract_preprocessing(args.backbone, data), output=contract_output(thresholds),
        ood=ood, training=training, conversion=shipped.record("per-modality test AUC", "LiteRT, 1 thread, 1 image"),
        metrics=metrics, plots=plots,
        data={"sources": sorted(np.unique(data["source"]).tolist()),
              "splits": {s: int((split == s).sum()) for s in ("train", "val", "test")}})
    write_card(core.write_model_json(TASK, metadata))
    print(f"done in {time.time() - started:.0f} s", flush=True)


def guard_features(args, data: dict[str, Any], extractor, features: np.ndarray) -> tuple[str | None, np.ndarray]:
    """(the layer the guard reads, None for the last map; its pooled training features). An earlier
    map than the heads' keeps what is not a brain slice apart: a backbone tuned end to end maps
    other images onto its classes by the last stage (history.md: the layers measured)."""
    train = data["split"] == "train"
    if args.ood_layer in (None, "last"):
        return None, features[train]
    tag = feature_cache_tag(args.backbone, args.weights, args.sources)
    return args.ood_layer, imaging.guard_training_features(TASK, tag, extractor, args.ood_layer, data["images"][train])


def guard_features_text(layer: str | None) -> str:
    return "the backbone's pooled last feature map" if layer is None else f"the backbone's pooled {layer} map"


def ood_groups(data: dict[str, Any]) -> np.ndarray:
    """The feature density's groups: modality × tumour (four clusters the heads separate)."""
    return np.char.add(np.where(data["modality"] == 1, "mri:", "ct:"),
                       np.where(data["tumor"] == 1, "tumor", "healthy"))


def contract_input(data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "image", "dtype": "float32", "shape": [None, *data["images"].shape[1:]],
            "value_range": [0, 255], "channels": ["grey", "grey", "grey"]}


def contract_preprocessing(backbone: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"in_graph": [f"{backbone} input scaling ({imaging.BACKBONES[backbone].scaling})"],
            "in_runtime": {**data["preprocessing"].to_metadata(), "color": "greyscale replicated to RGB"}}


def contract_output(thresholds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Labels and tensors, with the MRI threshold as the default and one per modality (the request may state it)."""
    return {"labels": TUMOR_LABELS, "positive_label": "tumor", "tensor": "tumor",
            "threshold": thresholds["mri"]["threshold"],
            "thresholds_by_modality": {m: thresholds[m]["threshold"] for m in MODALITIES},
            "threshold_rule": thresholds["ct"]["rule"] + ", per modality (MRI: within every MRI source)",
            "modality_labels": MODALITIES, "modality_tensor": "modality",
            "type_labels": TYPES, "type_tensor": "tumor_type", "cam_tensor": "tumor_cam"}


if __name__ == "__main__":
    main()
