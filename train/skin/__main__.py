"""
Title: Melanoma vs benign in dermoscopy images, held up on two sources
Description: ImageNet backbone (MobileNetV2 by default; VGG16 as in the seed when its weights
    are given) — as shipped, the one tuned end to end by ``train.finetune`` (train/weights/skin) —
    frozen or with its last stage fine-tuned again, Shades-of-Grey colour constancy, flip
    augmentation, a linear class-weighted head (exact CAMs); threshold on validation for
    sensitivity >= 0.90.
Accelerator: none (`make train-skin`, 256 px: ≈ 80 minutes on 2 CPU cores with empty feature caches).

## Introduction

The seed ("Cancer Image Recognition") fine-tunes VGG16 on ISIC images; the 2017 challenge winners
reached melanoma AUC ≈ 0.87. Here HAM10000 and ISIC 2017 are mixed and every figure is reported per
source too. Candidates differ in colour constancy (cameras and clinics differ in white balance) and
in how much of the backbone is tuned; validation AUC averaged over the two sources chooses.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from train import core, imaging
from train.ood.evaluate import guard_contract
from train.skin.candidates import (ENSEMBLE_RULE, SYMMETRIC_VIEWS_TEXT, candidate_table, choose_candidate,
                                   fine_tuning_record, guard_features, print_candidates, screen_input_sizes,
                                   train_candidates, with_views)
from train.skin.card import write_card, write_plots
from train.skin.data import LABELS, SOURCES, TASK, load_data
from train.skin.evaluate import evaluate_variant, operating_points, test_metrics
from train.skin.experiments import record_experiment


def main(argv: list[str] | None = None) -> None:
    parser, args = parse_args(argv)
    if args.card_only:
        return write_card(core.read_model_json(TASK))
    if args.second_weights and not args.fine_tune_epochs:
        parser.error("--second-weights pairs last-stage-tuned backbones: it needs --fine-tune-epochs > 0")
    if args.record_experiment:
        name, run_json, run_command = args.record_experiment
        return record_experiment(name, json.loads(Path(run_json).read_text()), run_command, args.decision)
    started = time.time()
    core.seed_everything(args.seed)
    if args.screen_input_sizes:
        return screen_input_sizes(args)
    args.input_size = args.input_size or imaging.BACKBONES[args.backbone].input_size
    data = load_data(args.input_size)
    images, split = data["images"], data["split"]
    print({s: int((split == s).sum()) for s in ("train", "val", "test")}, flush=True)

    # ## Candidates, chosen on the mean per-source validation AUC; then 1 view or 8
    results = train_candidates(args, data)
    if args.screen_candidates:
        return print_candidates(results, time.time() - started)
    choice = choose_candidate(results)
    chosen = results[choice]
    print(f"chosen on validation: {choice}, l2 {chosen['l2']}", flush=True)
    ood_features, ood_layer = guard_features(args, chosen, data)
    density = core.ood.fit_feature_density(ood_features, ood_groups(data)[split == "train"])
    model, views, symmetric_views = with_views(chosen, data, density, ood_layer)
    core.export_saved_model(model, TASK)  # for `make bench` (TensorFlow and ONNX Runtime baselines)

    # ## Convert, threshold on validation, evaluate on test (through TFLite)
    rng = np.random.default_rng(args.seed)
    samples = images[rng.permutation(np.flatnonzero(split == "train"))[:100]].astype(np.float32)
    per_call = 8 if symmetric_views else 64  # images per inference call: 8 views each are 64 backbone passes
    shipped = core.convert_and_choose(
        TASK, model, samples, batch_size=per_call, evaluate=lambda content: evaluate_variant(content, data, per_call),
        metric_keys=tuple(f"test_auc_{s}" for s in SOURCES), latency_key="latency_ms_1_image_1_thread",
        latency_batch=images[np.flatnonzero(split == "test")[:1]].astype(np.float32), latency_runs=20)
    p_val, p_test = shipped.outputs[shipped.name]["val"], shipped.outputs[shipped.name]["test"]
    threshold, every_source = operating_points(data, p_val, p_test)
    metrics = test_metrics(data, p_val, p_test, threshold, args.seed)
    plots = write_plots(data["y"], data["source"], split == "test", p_test, metrics, threshold, images,
                        shipped.model.content, args.seed)
    output = {"labels": LABELS, "positive_label": "melanoma", "tensor": "melanoma", "cam_tensor": "melanoma_cam",
              "threshold": threshold["threshold"], "threshold_rule": threshold["rule"],
              "alternative_thresholds": {"every_source": every_source}}
    ood = ood_guard(density, ood_layer, shipped, data, symmetric_views, output, args.seed)

    # ## model.json, training.json and the card
    two_backbones = chosen.get("backbones", 1) == 2
    metadata = core.model_metadata(
        core.Release.load(TASK), {**vars(args), "backbones": 2 if two_backbones else 1},
        name_fields={"backbone": args.backbone.replace("_", "") + ("x2" if two_backbones else "")},
        artifact=core.artifact_entry(shipped.model),
        input={"kind": "image", "dtype": "float32", "shape": [None, *images.shape[1:]], "value_range": [0, 255],
               "channels": ["R", "G", "B"]},
        preprocessing={"in_graph": (["Shades-of-Grey colour constancy (p = 6)"] if chosen["constancy"] else [])
                       + [f"{args.backbone} input scaling"]
                       + ([f"two {args.backbone} backbones, last feature maps concatenated"] if two_backbones else [])
                       + ([SYMMETRIC_VIEWS_TEXT] if symmetric_views else []),
                       "in_runtime": data["preprocessing"].to_metadata()},
        output=output, ood=ood, training=training_record(args, results, choice, views, symmetric_views, threshold, started),
        conversion=shipped.record("per-source test AUC", "LiteRT, 1 thread, 1 image"), metrics=metrics,
        data={"splits": {s: {src: int(((split == s) & (data["source"] == src)).sum()) for src in SOURCES}
                         for s in ("train", "val", "test")}},
        plots=plots)
    write_card(core.write_model_json(TASK, metadata))
    print(f"done in {time.time() - started:.0f} s", flush=True)


def ood_groups(data: dict[str, Any]) -> np.ndarray:
    """The score's groups: source × label (the two sources' images differ as much as the classes do)."""
    return np.char.add(np.char.add(data["source"].astype(str), "/"), np.asarray(LABELS)[data["y"]])


def ood_guard(density: dict[str, Any], layer: str | None, shipped, data: dict[str, Any], symmetric_views: bool,
              output: dict[str, Any], seed: int) -> dict[str, Any]:
    """model.json's ``ood`` (``guard_contract``), the features named."""
    features = (f"the backbone's pooled {layer or 'last feature'} map"
                + (", averaged over the 8 views" if symmetric_views else ""))
    return guard_contract(TASK, shipped.model.content, density, shipped.outputs[shipped.name]["ood_val"],
                          features=features, output=output,
                          preprocessing={"in_runtime": data["preprocessing"].to_metadata()}, seed=seed)


def training_record(args, results, choice: str, views, symmetric_views: bool, threshold, started: float) -> dict:
    """training.json's ``training``: the options, every candidate, the choices and the tuning runs behind them."""
    chosen = results[choice]
    second_backbone = ({"second_weights": args.second_weights, "ensemble_rule": ENSEMBLE_RULE,
                        "second_backbone_tuning": imaging.recorded_fine_tuning(args.second_weights).get("backbone_tuning")}
                       if args.second_weights else {})
    return {"seed": args.seed, "backbone": args.backbone, "weights": args.weights or "default",
            "colour_constancy": chosen["constancy"], "l2": chosen["l2"], "candidates": candidate_table(results),
            "chosen": choice, "augmentation": chosen["augmentation"],
            "views": {"val_auc_mean": views, "chosen": 8 if symmetric_views else 1,
                      "rule": "8 symmetric views ship if their validation mean AUC beats one view's"},
            "class_weighting": "inverse class frequency", "threshold": threshold,
            "fine_tuning": fine_tuning_record(results, choice), **imaging.recorded_fine_tuning(args.weights),
            **second_backbone, "command": "make train-skin", "seconds": round(time.time() - started, 1)}


def parse_args(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description="Train the melanoma model (linear head on a tuned backbone).")
    parser.add_argument("--backbone", default="mobilenet_v2", choices=sorted(imaging.BACKBONES))
    parser.add_argument("--weights", default=None, help="weights file, 'imagenet' (Keras cache) or 'none'")
    parser.add_argument("--input-size", type=int, default=None,
                        help="square size the images are resized to and the backbone runs at (default: the "
                             "backbone's own, 224 for MobileNetV2)")
    parser.add_argument("--fine-tune-epochs", type=int, default=8,
                        help="> 0 adds a last-stage-tuned candidate; 0 = frozen backbone only")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="for fine-tuning the last stage")
    parser.add_argument("--full-fine-tune-epochs", type=int, default=0,
                        help="> 0 adds a candidate with every backbone layer tuned on augmented images "
                             "(≈ 2.5 min per epoch on 2 CPU cores; meant for a lent GPU)")
    parser.add_argument("--second-weights", default=None,
                        help="a second tuned backbone (e.g. train.finetune --seed 2018): adds a candidate with both "
                             "backbones' last-stage-tuned features concatenated under one linear head")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--screen-input-sizes", type=int, nargs="+", metavar="SIZE",
                        help="only rate the frozen backbone (colour constancy, one view) at these input sizes on "
                             "validation (measurements.yaml keeps the result); ships nothing")
    parser.add_argument("--screen-candidates", action="store_true",
                        help="only train the candidates (frozen, last stage tuned: e.g. of another --backbone) and print "
                             "their validation AUCs, one view (measurements.yaml keeps the result); ships nothing")
    parser.add_argument("--card-only", action="store_true")
    parser.add_argument("--record-experiment", nargs=3, metavar=("NAME", "RUN_MODEL_JSON", "RUN_COMMAND"),
                        help="add a run that is not shipped (its merged model.json + training.json, kept aside) to "
                             "the committed training.json's training.experiments, with --decision; re-render the card")
    parser.add_argument("--decision", help="why the recorded run is not shipped")
    return parser, core.parse_shipped_args(parser, TASK, argv)


if __name__ == "__main__":
    main()
