"""
Title: Melanoma vs benign in dermoscopy images, held up on two sources
Description: ImageNet backbone (MobileNetV2 by default; VGG16 as in the seed when its weights
    are given) — by default the one tuned end to end by ``train.finetune`` (train/weights/skin) —
    frozen or with its last stage fine-tuned again, Shades-of-Grey colour constancy, flip
    augmentation, a linear class-weighted head (exact CAMs); threshold on validation for
    sensitivity >= 0.90.
Accelerator: none (`make train-skin`, 256 px: ≈ 80 minutes on 2 CPU cores with empty feature caches).

## Introduction

The seed ("Cancer Image Recognition") fine-tunes VGG16 on ISIC images; the 2017 challenge winners
reached melanoma AUC ≈ 0.87. Here two sources are mixed — HAM10000 (CC BY-NC 4.0) and ISIC 2017
(CC0) — and a model trained on one transfers badly to the other, so every figure is reported per
source too. Candidates differ in colour constancy (cameras and clinics differ in white balance);
validation AUC averaged over the two sources chooses.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from train import common, finetune, transfer
from train.image_datasets import load_images, load_manifest

from oncoserve_runtime import ImagePreprocessing  # noqa: E402

TASK = "skin"
LABELS = ["benign", "melanoma"]
SOURCES = ["HAM10000", "ISIC2017"]
SOURCE_NAMES = {"HAM10000": "HAM10000", "ISIC2017": "ISIC 2017"}  # as the card writes them
MIN_SENSITIVITY = 0.90
SYMMETRIC_VIEWS_TEXT = ("per-cell logits averaged over the image's 8 flips and 90° rotations, each view turned back "
                        "first (the linear head on the averaged features)")
ENSEMBLE_MARGIN = 0.005  # validation mean AUC a two-backbone candidate must add to pay for 2× the compute
ENSEMBLE_RULE = (f"the two-backbone candidate (2× the compute per image) ships only if its validation mean AUC beats the "
                 f"best single backbone's by at least {ENSEMBLE_MARGIN}.")
TUNED_WEIGHTS = common.REPO_ROOT / "train" / "weights" / TASK / finetune.WEIGHTS_FILE
V1_3_TUNING_SCORE = 0.8198  # the 24-epoch CPU run v1.3.0 shipped: what the next backbone had to beat
TUNING_RUNS = (  # whole-backbone tuning runs of train.finetune (cosine schedule; learning rate 1e-4 unless flagged)
    ("8 epochs on a lent H100, torch backend (v1.2.0)", "--epochs 8", 0.8121),
    ("24 epochs on 2 CPU cores, TensorFlow backend (75 min, v1.3.0)", "--epochs 24", V1_3_TUNING_SCORE),
    ("40 epochs on a lent H100, torch backend (17 min, v1.4.0)", "--epochs 40", 0.8444),
    ("30 epochs on 2 CPU cores, TensorFlow backend, seed 2018: the second backbone (85 min)", "--epochs 30 --seed 2018",
     0.8432),
    # Screen fixed before it ran: keep only if it beats its own start (the tuned backbone frozen at
    # 256 px under a fresh temporary head: 0.8573, then 0.8530) by >= 0.005. It fell to 0.82-0.84.
    ("the 40-epoch backbone tuned 8 more epochs on 256-px images, 2 CPU cores (72 min): not kept, below its "
     "frozen start (0.857)", "--weights train/weights/skin/backbone.weights.h5 --input-size 256 "
     "--learning-rates 2e-05 --epochs 8", 0.8371),
)

# `python -m train.skin --weights train/weights/skin/backbone.weights.h5 --screen-input-sizes 224 256 288`
# (frozen tuned backbone, colour constancy, one view): size, validation AUC HAM, ISIC 2017, mean.
INPUT_SIZE_SCREEN = ((224, 0.8982, 0.8019, 0.8501), (256, 0.8977, 0.8265, 0.8621), (288, 0.8835, 0.8274, 0.8554))
V1_5_INPUT_SIZE = 256  # the size the v1.5.0 release and its test comparison below are of
V1_4_VAL_AUC = 0.8643  # v1.4.0's validation mean AUC (8 views): what a new input size had to beat
# v1.5.0 (256 px) against v1.4.0 (224 px) on the test images, once both existed: AUC difference and its
# 95% interval from a paired bootstrap (1,000 resamples of test images, seed 2017).
V1_5_VS_V1_4_TEST = (("both sources", -0.0074, -0.0165, 0.0017), ("HAM10000", -0.0058, -0.0163, 0.0043),
                     ("ISIC 2017", -0.0198, -0.0450, 0.0029))
INPUT_SIZE_RULE = ("fixed before the screen's figures were seen: a size goes on to the full pipeline only if its frozen "
                   "validation mean AUC beats 224 px by ≥ 0.005 (the compute grows as the square of the size); of two "
                   "that pass, the smaller, unless the larger beats it by ≥ 0.005 too; the full pipeline at that size "
                   f"ships only if its validation mean AUC with 8 views beats v1.4.0's {V1_4_VAL_AUC} by ≥ 0.005")


def load_data(size: int) -> dict[str, Any]:
    manifest = load_manifest(TASK)
    preprocessing = ImagePreprocessing(size=(size, size), scaling="none")
    return {"preprocessing": preprocessing, "images": load_images(TASK, list(manifest["path"]), preprocessing),
            "y": (manifest["label"].to_numpy() == "melanoma").astype(int),
            "source": manifest["source_dataset"].to_numpy(), "split": manifest["split"].to_numpy()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the melanoma model (frozen features + linear head).")
    parser.add_argument("--backbone", default="mobilenet_v2", choices=sorted(transfer.BACKBONES))
    parser.add_argument("--weights", default=None, help="weights file, 'imagenet' (Keras cache) or 'none'")
    parser.add_argument("--input-size", type=int, default=None,
                        help="square size the images are resized to and the backbone runs at (default: the "
                             "backbone's own, 224 for MobileNetV2)")
    # 8 (early stopping usually ends sooner) produced the shipped v1.1.0; 0 = frozen candidates only (≈ 3 min)
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
                             "validation, as INPUT_SIZE_SCREEN records; ships nothing")
    parser.add_argument("--card-only", action="store_true")
    parser.add_argument("--record-experiment", nargs=3, metavar=("NAME", "RUN_MODEL_JSON", "RUN_COMMAND"),
                        help="add a run that is not shipped (the model.json it wrote, kept aside) to the committed "
                             "model.json's training.experiments, with --decision; re-render the card")
    parser.add_argument("--decision", help="why the recorded run is not shipped")
    args = common.parse_shipped_args(parser, TASK, argv)
    if args.card_only:
        return write_card(common.read_model_json(TASK))
    if args.second_weights and not args.fine_tune_epochs:
        parser.error("--second-weights pairs last-stage-tuned backbones: it needs --fine-tune-epochs > 0")
    if args.record_experiment:
        name, run_json, run_command = args.record_experiment
        return record_experiment(name, json.loads(Path(run_json).read_text()), run_command, args.decision)
    started = time.time()
    common.seed_everything(args.seed)
    if args.screen_input_sizes:
        return screen_input_sizes(args)
    args.input_size = args.input_size or transfer.BACKBONES[args.backbone].input_size

    data = load_data(args.input_size)
    images, y, source, split, preprocessing = (data[k] for k in ("images", "y", "source", "split", "preprocessing"))
    train, val, test = split == "train", split == "val", split == "test"
    print({s: int((split == s).sum()) for s in ("train", "val", "test")}, flush=True)

    """
    ## Features and heads (mirrored training images as augmentation: dermoscopy has no left or right)

    Colour constancy is chosen on frozen features (cheap); with ``--fine-tune-epochs`` the chosen
    extractor's last stage is also tuned and competes on validation like any other candidate.
    """
    results = {}
    for constancy in (False, True):
        results[f"colour_constancy={constancy}"] = {
            **frozen_candidate(args, constancy, images, y, source, split), "constancy": constancy,
            "augmentation": "horizontal flips of training images, in feature space"}
    frozen = results[max(results, key=lambda key: results[key]["score"])]
    if args.fine_tune_epochs:
        extractor, tuned = tune_last_stage(args, args.weights, frozen["constancy"], images, y, split)
        augmentation = f"{tuned.summary['augmentation']} (maps for fine-tuning, pooled features for the head)"
        results[f"colour_constancy={frozen['constancy']}, last stage tuned"] = {
            **fit_head(tuned.pooled, list(tuned.augmented_train.values()), y, source, split, args.seed),
            "extractor": extractor, "constancy": frozen["constancy"], "fine_tuning": tuned.summary,
            "augmentation": augmentation}
    if args.second_weights:
        # The same recipe on a backbone tuned from another seed; one linear head over both feature sets.
        second_extractor, second = tune_last_stage(args, args.second_weights, frozen["constancy"], images, y, split,
                                                   model_name=f"{args.backbone}_second_features")
        both = {name: np.concatenate([tuned.augmented_train[name], second.augmented_train[name]], axis=1)
                for name in tuned.augmented_train}
        results[f"colour_constancy={frozen['constancy']}, last stage tuned, two backbones"] = {
            **fit_head(np.concatenate([tuned.pooled, second.pooled], axis=1), list(both.values()), y, source, split,
                       args.seed),
            "extractor": transfer.concatenated_extractor([extractor, second_extractor]),
            "constancy": frozen["constancy"], "fine_tuning": tuned.summary, "backbones": 2,
            "augmentation": augmentation}
    if args.full_fine_tune_epochs:
        key = f"colour_constancy={frozen['constancy']}, all layers tuned"
        extractor = transfer.build_feature_extractor(args.backbone, args.weights, colour_constancy=frozen["constancy"],
                                                     input_size=args.input_size)
        whole = transfer.fine_tune_whole_backbone(
            extractor, images, {"melanoma": y}, split,
            score=lambda outputs: mean_val_auc(outputs["melanoma"][:, 1], y, source, split),
            augmentation=transfer.dermoscopy_augmentation(args.seed), learning_rate=2e-5,
            epochs=args.full_fine_tune_epochs, seed=args.seed)
        pooled = transfer.pooled_outputs(extractor, images)  # not cached: these weights exist only in this run
        mirrored = transfer.pooled_outputs(extractor, images[train][:, :, ::-1])
        results[key] = {**fit_head(pooled, [mirrored], y, source, split, args.seed), "extractor": extractor,
                        "constancy": frozen["constancy"], "fine_tuning": whole,
                        "augmentation": f"{whole['augmentation']} for tuning; horizontal flips for the head"}
    choice = choose_candidate(results)
    chosen, constancy = results[choice], results[choice]["constancy"]
    # model.json keeps the chosen tuning run, else the first one that lost, else says none ran.
    tuning_runs = [key for key in results if "fine_tuning" in results[key]]
    shown = choice if choice in tuning_runs else next(iter(tuning_runs), None)
    fine_tuning = {**results[shown]["fine_tuning"], "chosen": shown == choice} if shown else {"run": False}
    print(f"chosen on validation: {choice}, l2 {chosen['l2']}", flush=True)
    backbone_tuning = finetune.recorded_fine_tuning(args.weights)  # weights from `train.finetune` carry its record
    two_backbones = chosen.get("backbones", 1) == 2
    second_backbone = ({"second_weights": args.second_weights, "ensemble_rule": ENSEMBLE_RULE,
                        "second_backbone_tuning": finetune.recorded_fine_tuning(args.second_weights).get("backbone_tuning")}
                       if args.second_weights else {})
    heads = {"melanoma": {"dense": chosen["dense"], "cam_class": 1}}
    # Dermoscopy has no up or left: averaging the features over the image's 8 flips and rotations
    # competes on validation like every other choice (it costs 8× the compute per image).
    symmetric = transfer.build_cam_model(chosen["extractor"], heads, symmetric_views=True)
    p_symmetric = symmetric.predict(images[val].astype(np.float32), batch_size=8, verbose=0)["melanoma"][:, 1]
    views = {"1": chosen["score"], "8": mean_val_auc(p_symmetric, y, source, split)}
    symmetric_views = chosen_views(views) == "8"
    print(f"validation mean AUC, 1 view {views['1']:.4f}, 8 symmetric views {views['8']:.4f}", flush=True)
    model = symmetric if symmetric_views else transfer.build_cam_model(chosen["extractor"], heads)
    common.export_saved_model(model, TASK)  # for `make bench` (TensorFlow and ONNX Runtime baselines)

    """
    ## Convert, threshold on validation, evaluate on test (through TFLite)
    """
    from convert.convert import choose_variant, convert_model, eligible_variants, run_tflite, shipping_rule, tflite_latency_ms

    rng = np.random.default_rng(args.seed)
    samples = images[rng.permutation(np.flatnonzero(train))[:100]].astype(np.float32)
    per_call = 8 if symmetric_views else 64  # images per inference call: 8 views each are 64 backbone passes
    variants = convert_model(model, samples, variants=("float32", "float16", "int8"), float_bound=1e-3,
                             batch_size=per_call)

    def p_melanoma(content: bytes, rows: np.ndarray) -> np.ndarray:
        index = np.flatnonzero(rows)
        return np.concatenate([run_tflite(content, images[chunk].astype(np.float32))["melanoma"][:, 1]
                               for chunk in np.array_split(index, max(1, len(index) // per_call))])

    comparison, scores = {}, {}
    for variant, converted in variants.items():
        try:
            scores[variant] = {"val": p_melanoma(converted.content, val), "test": p_melanoma(converted.content, test)}
        except RuntimeError as exc:  # e.g. int8 colour constancy dividing by a zero-quantised illuminant
            comparison[variant] = {**converted.summary(), "failed": str(exc).splitlines()[0]}
            print(f"{variant}: fails at inference ({comparison[variant]['failed']}); not eligible", flush=True)
            continue
        auc = {s: common.binary_metrics(y[test][source[test] == s], scores[variant]["test"][source[test] == s], 0.5)["roc_auc"]
               for s in SOURCES}
        comparison[variant] = {**converted.summary(), **{f"test_auc_{s}": a for s, a in auc.items()}}
        print(f"{variant}: {len(converted.content):,} bytes, test AUC {auc}", flush=True)
    eligible = eligible_variants(comparison, [f"test_auc_{s}" for s in SOURCES])
    # Timed as Lambda runs it: LiteRT, one thread, one image.
    one_image = images[np.flatnonzero(test)[:1]].astype(np.float32)
    for variant in eligible:
        comparison[variant]["latency_ms_1_image_1_thread"] = tflite_latency_ms(variants[variant].content, one_image, runs=20)
    shipped = choose_variant(comparison, eligible, "latency_ms_1_image_1_thread")
    artifact = variants[shipped].write(common.function_dir(TASK) / "model" / "model.tflite")
    p_val, p_test = scores[shipped]["val"], scores[shipped]["test"]
    threshold = common.choose_threshold(y[val], p_val, min_sensitivity=MIN_SENSITIVITY)
    threshold["val_by_source"] = common.sensitivity_by_group(y[val], p_val, source[val], threshold["threshold"])
    print(f"shipping {shipped}; threshold {threshold}", flush=True)
    # Not shipped (the pooled rule is the contract since v1.0.0), but documented for clients, who get
    # the probabilities and can apply it: the operating point that holds sensitivity on each source.
    every_source = common.choose_threshold_within_every_group(y[val], p_val, source[val],
                                                              min_sensitivity=MIN_SENSITIVITY, group_name="source")
    every_source["test"] = common.binary_metrics(y[test], p_test, every_source["threshold"])
    every_source["test_by_source"] = common.sensitivity_by_group(y[test], p_test, source[test], every_source["threshold"])
    print(f"alternative operating point (each source): {every_source['threshold']:.4f}, validation sensitivity "
          f"{every_source['val_sensitivity']:.3f} specificity {every_source['val_specificity']:.3f}", flush=True)

    metrics = {}
    for name, rows in (("test", np.ones(test.sum(), bool)), *((f"test_{s}", source[test] == s) for s in SOURCES)):
        m = common.binary_metrics(y[test][rows], p_test[rows], threshold["threshold"])
        ci = common.bootstrap_auc(y[test][rows], p_test[rows], seed=args.seed)
        metrics[name] = {**m, **ci, "slice": f"test images{'' if name == 'test' else ', ' + name[5:]} (lesion-grouped)"}
        print(f"{name}: AUC {ci['roc_auc']:.4f} [{ci['roc_auc_ci_low']:.3f}, {ci['roc_auc_ci_high']:.3f}], sensitivity "
              f"{m['sensitivity']:.3f}, specificity {m['specificity']:.3f}", flush=True)
    metrics["val"] = {**common.binary_metrics(y[val], p_val, threshold["threshold"]), "slice": "validation images"}

    plots = write_plots(y, source, test, p_test, metrics, threshold, images, variants[shipped].content, args.seed)
    metadata = {
        "name": f"oncoserve-skin-{args.backbone.replace('_', '')}{'x2' if two_backbones else ''}-cam",
        "task": TASK,
        **release_notes(args, choice, two_backbones, views),
        "artifact": {"file": artifact.name, "sha256": variants[shipped].sha256, "bytes": len(variants[shipped].content),
                     "variant": shipped, "max_abs_diff_vs_keras": variants[shipped].max_abs_diff},
        "input": {"kind": "image", "dtype": "float32", "shape": [None, *images.shape[1:]], "value_range": [0, 255],
                  "channels": ["R", "G", "B"]},
        "preprocessing": {"in_graph": (["Shades-of-Grey colour constancy (p = 6)"] if constancy else [])
                          + [f"{args.backbone} input scaling"]
                          + ([f"two {args.backbone} backbones, last feature maps concatenated"] if two_backbones else [])
                          + ([SYMMETRIC_VIEWS_TEXT] if symmetric_views else []),
                          "in_runtime": preprocessing.to_metadata()},
        "output": {"labels": LABELS, "positive_label": "melanoma", "tensor": "melanoma", "cam_tensor": "melanoma_cam",
                   "threshold": threshold["threshold"], "threshold_rule": threshold["rule"],
                   "alternative_thresholds": {"every_source": every_source}},
        "training": {"seed": args.seed, "backbone": args.backbone, "weights": args.weights or "default",
                     "colour_constancy": constancy, "l2": chosen["l2"],
                     "candidates": {key: {"val_auc_mean": r["score"], "l2": r["l2"],
                                          **{f"val_auc_{s}": a for s, a in r["per_source"].items()}}
                                    for key, r in results.items()},
                     "chosen": choice, "augmentation": chosen["augmentation"],
                     "views": {"val_auc_mean": views, "chosen": 8 if symmetric_views else 1,
                               "rule": "8 symmetric views ship if their validation mean AUC beats one view's"},
                     "class_weighting": "inverse class frequency", "threshold": threshold,
                     "fine_tuning": fine_tuning, **backbone_tuning, **second_backbone,
                     "command": "make train-skin", "seconds": round(time.time() - started, 1)},
        "conversion": {"variants": comparison, "shipped": shipped,
                       "rule": shipping_rule("per-source test AUC", "LiteRT, 1 thread, 1 image")},
        "metrics": metrics,
        "data": {
            "source": "HAM10000 (4,201 images) and ISIC 2017 challenge train/val (1,928 images); lesion/near-duplicate "
                      "grouped splits (../shared/data/skin/PROVENANCE.md)",
            "citation": "Tschandl P, Rosendahl C, Kittler H. Sci Data 2018;5:180161 doi:10.1038/sdata.2018.161; "
                        "Codella NCF et al. ISBI 2018, arXiv:1710.05006",
            "license": "HAM10000: CC BY-NC 4.0 (attribution, NON-COMMERCIAL); ISIC 2017: CC0 1.0 (cite Codella et al.)",
            "splits": {s: {src: int(((split == s) & (source == src)).sum()) for src in SOURCES} for s in ("train", "val", "test")},
        },
        "plots": plots,
        "intended_use": "Research and teaching: melanoma-vs-benign ranking of dermoscopy images like HAM10000/ISIC.",
        "out_of_scope": "Diagnosis or triage of real patients; clinical (non-dermoscopic) photos; skin types and "
                        "lesion sites under-represented in the sources.",
        "limitations": "Two public sources with known biases (mostly fair skin, referral centres); no prospective "
                       "validation. Research software, not a medical device.",
    }
    write_card(common.write_model_json(TASK, metadata))
    print(f"done in {time.time() - started:.0f} s", flush=True)


RELEASED = {  # what each shipped version changed; the next version's line is written by release_notes
    "1.0.0": "First release: frozen mobilenet_v2 features, linear head, float32 TFLite.",
    "1.1.0": "Last-stage fine-tuning as a candidate; shipped: colour_constancy=True, last stage tuned, float16 TFLite.",
    "1.2.0": "Candidates on a backbone tuned end to end (train.finetune, 8 epochs on a lent H100); shipped: "
             "colour_constancy=True, last stage tuned, float16 TFLite.",
    "1.3.0": "Candidates on a backbone tuned end to end (train.finetune, 24 epochs on the CPU; tuning validation score "
             "0.8121 → 0.8198); shipped: colour_constancy=True, last stage tuned, float16 TFLite.",
    "1.4.0": "Candidates on a backbone tuned end to end (train.finetune, 40 epochs on NVIDIA H100 80GB HBM3; tuning "
             "validation score 0.8198 → 0.8444); shipped: colour_constancy=True, last stage tuned, features averaged "
             "over 8 flips and rotations, float16 TFLite.",
}


def frozen_candidate(args: argparse.Namespace, constancy: bool, images: np.ndarray, y: np.ndarray, source: np.ndarray,
                     split: np.ndarray) -> dict[str, Any]:
    """The frozen ``args.weights`` backbone at ``args.input_size``: pooled features (cached; mirrored
    training images as augmentation, dermoscopy has no left or right) under a linear head."""
    tag = feature_cache_tag(args, args.weights, constancy)
    extractor = transfer.build_feature_extractor(args.backbone, args.weights, colour_constancy=constancy,
                                                 input_size=args.input_size)
    features = transfer.pooled_features(TASK, tag, extractor, images)
    flipped = transfer.pooled_features(TASK, tag + "_flip_train", extractor, images[split == "train"][:, :, ::-1])
    return {**fit_head(features, [flipped], y, source, split, args.seed), "extractor": extractor}


def screen_input_sizes(args: argparse.Namespace) -> None:
    """The cheap first look at a larger input: frozen features of the given weights with colour
    constancy and a linear head, one view, validation only (INPUT_SIZE_SCREEN keeps the result)."""
    for size in args.screen_input_sizes:
        args.input_size = size
        data = load_data(size)
        rated = frozen_candidate(args, True, data["images"], data["y"], data["source"], data["split"])
        print(f"input {size} px: validation mean AUC {rated['score']:.4f}, per source "
              f"{ {k: round(v, 4) for k, v in rated['per_source'].items()} }", flush=True)


def input_size_text(metadata: dict[str, Any]) -> str:
    """The input-size screen and its rule, for the card."""
    size = metadata["preprocessing"]["in_runtime"]["resize"][0]
    rows = "\n".join(f"| {px} | {ham:.4f} | {isic:.4f} | {mean:.4f} |" for px, ham, isic, mean in INPUT_SIZE_SCREEN)
    return f"""
Input size: images are resized to **{size} px** (keras-image-helper, nearest) and the backbone runs at that
size. HAM10000 images are 200 × 150 and ISIC 2017 ones 256 × 256 in the data, so at 224 px the ISIC
images lose detail. Screen (`python -m train.skin --screen-input-sizes`, frozen tuned backbone, colour
constancy, one view, validation AUC); rule {INPUT_SIZE_RULE}:

| input px | HAM10000 | ISIC 2017 | mean |
|---|---|---|---|
{rows}
{size_decision_text(metadata) if size == V1_5_INPUT_SIZE else ""}"""


def size_decision_text(metadata: dict[str, Any]) -> str:
    """What the 256-px release cost on test, said next to the rule that shipped it."""
    rows = "\n".join(f"| {name} | {d:+.4f} [{low:+.4f}, {high:+.4f}] |" for name, d, low, high in V1_5_VS_V1_4_TEST)
    views = metadata["training"]["views"]["val_auc_mean"]["8"]
    return f"""
256 px passed the screen (+0.012; 288 px did not beat it) and the full pipeline reached validation mean AUC
{views:.4f} against {V1_4_VAL_AUC} (+{views - V1_4_VAL_AUC:.4f}), so by the rule it ships. **On test it scores lower
than v1.4.0 on every slice** (paired bootstrap of the test images, v1.5.0 − v1.4.0):

| slice | AUC difference [95% CI] |
|---|---|
{rows}

Every interval holds zero, and validation's gain is as small: neither split can tell the two apart.
It ships because validation decides and test only reports; choosing v1.4.0 back on these
figures would make test the judge. `python -m train.skin --input-size 224` rebuilds v1.4.0.
"""


def chosen_views(views: dict[str, float]) -> str:
    """"8" when averaging over the 8 symmetric views beats the image as given on validation, else "1"."""
    return "8" if views["8"] > views["1"] else "1"


def release_notes(args: argparse.Namespace, choice: str, two_backbones: bool, views: dict[str, float]) -> dict[str, Any]:
    """``version`` and ``changelog``: 1.4.0 unless this run ships something new — images at another
    size than the backbone's own, or two backbones — each a minor version of its own."""
    changelog, version = dict(RELEASED), "1.4.0"
    if args.input_size != transfer.BACKBONES[args.backbone].input_size:
        version = "1.5.0"
        shipped_views = chosen_views(views)
        averaged = ", features averaged over 8 flips and rotations" if shipped_views == "8" else ""
        changelog[version] = (f"Images resized to {args.input_size} px and the backbone run at that size (tuned at "
                              f"{transfer.BACKBONES[args.backbone].input_size}); shipped: {choice}{averaged}; "
                              f"validation mean AUC {views[shipped_views]:.4f} (v1.4.0: {V1_4_VAL_AUC}).")
    if two_backbones:
        version = f"1.{int(version.split('.')[1]) + 1}.0"
        changelog[version] = (f"Two tuned backbones (--weights, --second-weights), features concatenated under one "
                              f"head, chosen by the rule: {ENSEMBLE_RULE}")
    return {"version": version, "changelog": changelog}


def feature_cache_tag(args: argparse.Namespace, weights: str | None, constancy: bool) -> str:
    """Names the cached features and maps of one backbone, weights file, colour-constancy setting and
    input size (the backbone's own size keeps the names the caches had before sizes could change)."""
    size = "" if args.input_size == transfer.BACKBONES[args.backbone].input_size else f"_px{args.input_size}"
    return f"{transfer.cache_tag(args.backbone, weights)}{'_sog' if constancy else ''}{size}"


def tune_last_stage(args: argparse.Namespace, weights: str | None, constancy: bool, images: np.ndarray, y: np.ndarray,
                    split: np.ndarray, model_name: str | None = None) -> tuple[Any, transfer.TunedFeatures]:
    """A fresh extractor of ``weights`` (fine-tuning changes its layers in place, the frozen candidates
    keep their own) with its last stage tuned on mirrored and flipped training images."""
    extractor = transfer.build_feature_extractor(args.backbone, weights, colour_constancy=constancy,
                                                 input_size=args.input_size, model_name=model_name)
    tuned = transfer.fine_tune_last_stage(TASK, feature_cache_tag(args, weights, constancy), extractor, args.backbone, images, split, {"melanoma": y},
                                          augmentations=transfer.MIRRORED_AND_FLIPPED, learning_rate=args.learning_rate,
                                          epochs=args.fine_tune_epochs, seed=args.seed)
    return extractor, tuned


def choose_candidate(results: dict[str, dict[str, Any]]) -> str:
    """The best validation mean AUC; a two-backbone candidate doubles the compute per request, so it
    must beat the best single backbone by ENSEMBLE_MARGIN, not by noise."""
    single = max((key for key in results if results[key].get("backbones", 1) == 1), key=lambda key: results[key]["score"])
    ensembles = [key for key in results if results[key].get("backbones", 1) > 1]
    best_ensemble = max(ensembles, key=lambda key: results[key]["score"], default=None)
    if best_ensemble and results[best_ensemble]["score"] >= results[single]["score"] + ENSEMBLE_MARGIN:
        return best_ensemble
    return single


def fit_head(features: np.ndarray, augmented_train: list[np.ndarray], y: np.ndarray, source: np.ndarray,
             split: np.ndarray, seed: int) -> dict[str, Any]:
    """Class-weighted linear head on training features (+ augmented copies), L2 chosen by the mean of
    the per-source validation AUCs: the model must hold up on both sources."""
    train, val = split == "train", split == "val"

    best = transfer.select_linear_head(
        np.concatenate([features[train], *augmented_train]), np.concatenate([y[train]] * (1 + len(augmented_train))),
        2, val=(features[val], y[val]), score=lambda p: mean_val_auc(p[:, 1], y, source, split),
        seed=seed, name="melanoma")
    return {**best, "per_source": val_auc_per_source(best["val_probabilities"][:, 1], y, source, split)}


def val_auc_per_source(p_val: np.ndarray, y: np.ndarray, source: np.ndarray, split: np.ndarray) -> dict[str, float]:
    val = split == "val"
    return common.auc_by_group(y[val], p_val, source[val])


def mean_val_auc(p_val: np.ndarray, y: np.ndarray, source: np.ndarray, split: np.ndarray) -> float:
    """How every skin candidate is rated: the mean of the per-source validation AUCs (it must hold up on both)."""
    return common.mean_auc_by_group(y[split == "val"], p_val, source[split == "val"])


def write_plots(y, source, test, p_test, metrics, threshold, images, content, seed) -> list[str]:
    from convert.convert import run_tflite

    names = []
    curves = {"all": (y[test], p_test)}
    curves.update({s: (y[test][source[test] == s], p_test[source[test] == s]) for s in SOURCES})
    common.plot_roc_pr(TASK, curves, "roc_pr")
    names.append("plots/roc_pr.png")
    for name in ("test", *(f"test_{s}" for s in SOURCES)):
        c = metrics[name]["confusion"]
        common.plot_confusion(TASK, common.confusion_grid(c), LABELS,
                              f"{name} (threshold {threshold['threshold']:.2f})", f"confusion_{name}")
        names.append(f"plots/confusion_{name}.png")
    rng = np.random.default_rng(seed)
    picks = [int(rng.choice(np.flatnonzero(test & (y == label) & (source == s)))) for s in SOURCES for label in (1, 1, 0)]
    batch = images[picks].astype(np.float32)
    names.append(transfer.plot_cam_examples(TASK, batch, run_tflite(content, batch)["melanoma_cam"],
                                            [f"{source[i]} {LABELS[y[i]]}" for i in picks]))
    return names


def views_text(views: dict[str, Any] | None) -> str:
    """The card's account of the symmetric-views choice ("" for a model.json written before it)."""
    if not views:
        return ""
    scores = views["val_auc_mean"]
    shipped = "the 8 views ship (8× the compute per image)" if views["chosen"] == 8 else "one view ships"
    return (f"\nViews: the chosen candidate with its {SYMMETRIC_VIEWS_TEXT}, so the CAM stays exact, scores validation "
            f"mean AUC {scores['8']:.4f}, the image as given {scores['1']:.4f}; {shipped}.\n")


def operating_points_text(metadata: dict[str, Any]) -> str:
    """The shipped threshold next to the one that holds sensitivity within each source (not shipped)."""
    alternative = metadata["output"].get("alternative_thresholds", {}).get("every_source")
    shipped_by_source = metadata["training"]["threshold"].get("val_by_source")
    if not alternative or not shipped_by_source:
        return ""
    m = metadata["metrics"]

    def row(name, threshold, val_by_source, val_specificity, test_sensitivity, test_specificity):
        return (f"| {name} | {threshold:.4f} | " + " / ".join(f"{val_by_source[s]['sensitivity']:.3f}" for s in SOURCES)
                + f" | {val_specificity:.3f} | " + " / ".join(f"{test_sensitivity[s]:.3f}" for s in SOURCES)
                + f" | {test_specificity:.3f} |")

    shipped = row("shipped: " + metadata["output"]["threshold_rule"], metadata["output"]["threshold"], shipped_by_source,
                  metadata["training"]["threshold"]["val_specificity"],
                  {s: m[f"test_{s}"]["sensitivity"] for s in SOURCES}, m["test"]["specificity"])
    other = row("not shipped: " + alternative["rule"], alternative["threshold"], alternative["val_by_group"],
                alternative["val_specificity"], {s: alternative["test_by_source"][s]["sensitivity"] for s in SOURCES},
                alternative["test"]["specificity"])
    short = [SOURCE_NAMES[s] for s in SOURCES if shipped_by_source[s]["sensitivity"] < MIN_SENSITIVITY]
    verdict = (f"but within {' and '.join(short)} images it does not, on validation already" if short
               else "and within each source too")
    return f"""
Operating points, per source (sensitivity {' / '.join(SOURCE_NAMES[s] for s in SOURCES)}). Pooled over both sources, the shipped
threshold meets validation sensitivity ≥ {MIN_SENSITIVITY:.2f}, {verdict}. A client that needs the
target on each source can apply the second threshold to the `probabilities` the response carries; it
costs specificity:

| operating point | threshold | val sensitivity | val specificity | test sensitivity | test specificity |
|---|---|---|---|---|---|
{shipped}
{other}
"""


def second_backbone_text(training: dict[str, Any]) -> str:
    """The card's account of the second tuned backbone and the rule that decides whether it ships."""
    if not training.get("second_weights"):
        return ""
    return (transfer.backbone_tuning_text(training.get("second_backbone_tuning"), training["second_weights"],
                                          title="Second backbone weights (the two-backbone candidate)")
            + f" Rule: {training['ensemble_rule']}")


def write_card(metadata: dict[str, Any]) -> None:
    m = metadata["metrics"]
    rows = "\n".join(
        f"| {name.replace('test_', '') if name != 'test' else 'both sources'} | {m[name]['n']} | {m[name]['roc_auc']:.3f} "
        f"[{m[name]['roc_auc_ci_low']:.3f}, {m[name]['roc_auc_ci_high']:.3f}] | {m[name]['pr_auc']:.3f} | "
        f"{m[name]['sensitivity']:.3f} | {m[name]['specificity']:.3f} | FN {m[name]['confusion']['fn']}, FP {m[name]['confusion']['fp']} |"
        for name in ("test", "test_HAM10000", "test_ISIC2017"))
    candidates = "\n".join(f"| {c} | {r['val_auc_HAM10000']:.4f} | {r['val_auc_ISIC2017']:.4f} | {r['val_auc_mean']:.4f} | {r['l2']:g} |"
                           for c, r in metadata["training"]["candidates"].items())
    conversion = common.conversion_table(metadata["conversion"],
                                         {"test_auc_HAM10000": "test AUC HAM", "test_auc_ISIC2017": "test AUC ISIC"},
                                         ("latency_ms_1_image_1_thread", "ms / image (1 thread)"))
    t = m["test"]
    fine_tuning = metadata["training"]["fine_tuning"]
    tuned = isinstance(fine_tuning, dict) and fine_tuning.get("chosen", False)
    end_to_end = bool(metadata["training"].get("backbone_tuning"))
    tuned_part = "All-layers-tuned" if tuned and fine_tuning["from_layer"] == "all layers" else "Last-stage-tuned"
    overview = f"""
Ranks a dermoscopy image as **melanoma** or **benign**. {tuned_part if tuned else ('End-to-end-tuned' if end_to_end else 'Frozen')}
**{metadata['training']['backbone']}** {'features (ImageNet weights tuned end to end on this data, see below)' if end_to_end else 'ImageNet features'}{' after Shades-of-Grey colour constancy' if metadata['training']['colour_constancy'] else ''}, a
linear class-weighted head trained with flip augmentation; with `"explain": true` the answer carries a
class-activation heatmap. Operating point: threshold **{metadata['output']['threshold']:.3f}**
({metadata['output']['threshold_rule']}).
"""
    evaluation = f"""
Test images (95% bootstrap CI, 1,000 resamples), at the shipped threshold:

| slice | n | ROC-AUC [95% CI] | PR-AUC | sensitivity | specificity | errors |
|---|---|---|---|---|---|---|
{rows}

In words: at this threshold the model misses {t['confusion']['fn']} of {t['confusion']['fn'] + t['confusion']['tp']}
test melanomas and sends {t['confusion']['fp']} of {t['confusion']['fp'] + t['confusion']['tn']} benign lesions for
a second look. Goals: HAM AUC ≥ 0.92, ISIC 2017 AUC ≥ 0.87; baseline to beat (frozen MobileNetV2 +
logistic regression) 0.83 / 0.79.
{operating_points_text(metadata)}
Candidates (validation AUC per source; the mean chooses):

| candidate | HAM10000 | ISIC 2017 | mean | L2 |
|---|---|---|---|---|
{candidates}
{views_text(metadata['training'].get('views'))}{input_size_text(metadata)}
Conversion ({metadata['conversion']['rule']}):

{conversion}

{transfer.fine_tuning_text(fine_tuning, backbone_tuned=end_to_end)}{transfer.backbone_tuning_text(metadata['training'].get('backbone_tuning'), metadata['training']['weights'])}{second_backbone_text(metadata['training'])}

{finetune.tuning_runs_table(TASK, TUNING_RUNS, "mean per-source validation AUC", "val mean AUC")}{experiments_text(metadata['training'].get('experiments'))}
"""
    common.write_model_card(TASK, metadata, overview=overview, evaluation=evaluation)


def experiment_from_run(run: dict[str, Any], command: str, decision: str) -> dict[str, Any]:
    """What ``training.experiments`` keeps of a run that was measured but not shipped (taken from
    the model.json that run wrote, so no figure is copied by hand)."""
    chosen = run["training"]["candidates"][run["training"]["chosen"]]
    m = run["metrics"]
    return {"command": command, "chosen": run["training"]["chosen"], "fine_tuning": run["training"]["fine_tuning"],
            "val": {"HAM10000": chosen["val_auc_HAM10000"], "ISIC2017": chosen["val_auc_ISIC2017"],
                    "mean": chosen["val_auc_mean"]},
            "test": {"all": m["test"]["roc_auc"], "HAM10000": m["test_HAM10000"]["roc_auc"],
                     "ISIC2017": m["test_ISIC2017"]["roc_auc"], "sensitivity": m["test"]["sensitivity"],
                     "specificity": m["test"]["specificity"]},
            "decision": decision}


def record_experiment(name: str, run: dict[str, Any], command: str, decision: str) -> None:
    metadata = common.read_model_json(TASK)
    metadata["training"].setdefault("experiments", {})[name] = common.rounded(experiment_from_run(run, command, decision))
    common.model_json_path(TASK).write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n")
    write_card(metadata)


def experiments_text(experiments: dict[str, Any] | None) -> str:
    """Runs that were measured but not shipped, with why."""
    lines = []
    for name, e in (experiments or {}).items():
        v, t = e["val"], e["test"]
        lines.append(
            f"\n\nMeasured, not shipped — **{name}** (`{e['command']}`, chosen in that run: {e['chosen']}): "
            f"validation AUC HAM {v['HAM10000']:.4f}, ISIC {v['ISIC2017']:.4f}, mean {v['mean']:.4f}; test AUC "
            f"{t['all']:.3f} (HAM {t['HAM10000']:.3f}, ISIC {t['ISIC2017']:.3f}), sensitivity {t['sensitivity']:.3f} "
            f"at specificity {t['specificity']:.3f}. {transfer.fine_tuning_text(e['fine_tuning'])} "
            f"Decision: {e['decision']}")
    return "".join(lines)


if __name__ == "__main__":
    main()
