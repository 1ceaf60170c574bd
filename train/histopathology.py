"""
Title: Invasive ductal carcinoma (IDC) in 50x50 H&E patches — CancerNet and what beats it
Description: the seed's CancerNet (separable convolutions, Adagrad, class weights), the same network
    trained with H&E stain jitter (+ per-patch colour standardisation), and MobileNetV2 with every
    layer tuned on the patches (``train.finetune``; committed weights) + a linear head; chosen on
    validation, threshold on validation, reported once on patient-held-out test. Frozen and
    last-stage-tuned ImageNet MobileNetV2 are measured by ``train/histopathology_transfer.py``
    (``make experiment-histopathology``).
Accelerator: none (about 25 minutes on 2 CPU cores for all candidates; tuning the backbone, ``make
    finetune-histopathology``, about 18 more)

## Introduction

Janowczyk & Madabhushi (2016) released 50x50 px patches of breast whole-slide images labelled IDC
or not. The seed ("Breast Cancer Classifier", PyImageSearch CancerNet) reports 86% accuracy, 85%
sensitivity and 85% specificity. Splits here are by patient (no patient in two splits), so the
numbers are harder than random patch splits. Data licence: reported CC0 1.0 on Kaggle; cite
Janowczyk & Madabhushi 2016 and Cruz-Roa et al. 2014.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from train import common, finetune, transfer
from train.image_datasets import load_images, load_manifest

from oncoserve_runtime import ImagePreprocessing  # noqa: E402

TASK = "histopathology"
LABELS = ["non_idc", "idc"]
PATCH = 50
PREPROCESSING = ImagePreprocessing(size=(PATCH, PATCH), scaling="none")  # in-graph Rescaling
MIN_SENSITIVITY = 0.88
# What the seed (CancerNet, random patch split) reported: the card's comparison row and its verdicts.
SEED_FIGURES = {"accuracy": 0.86, "sensitivity": 0.85, "specificity": 0.85}
TRANSFER = "mobilenet_v2_tuned"  # the candidate built on a backbone tuned by train.finetune (any input size)
TRANSFER_SIZE = 96  # backbone input (50 px patches upscaled in-graph) when the tuning record does not say
TUNED_WEIGHTS = common.REPO_ROOT / "train" / "weights" / TASK / finetune.WEIGHTS_FILE
# Whole-backbone tuning runs compared on validation (best validation AUC of each run's temporary head),
# each reproducible by `python -m train.finetune run histopathology <flags>`; the card lists them.
V1_1_TUNING_AUC = 0.9317  # the 16-epoch run v1.1.0 shipped
TUNING_RUNS = (
    ("8 epochs at 96 px", "--epochs 8", 0.9196),
    ("16 epochs at 96 px (v1.1.0)", "--epochs 16", V1_1_TUNING_AUC),
    ("16 epochs at 128 px", "--epochs 16 --input-size 128", 0.9326),
    ("32 epochs at 96 px", "--epochs 32", 0.9350),
)

"""
## Data

Edge patches of the original dataset are smaller than 50x50 (e.g. 50x42); like the original
CancerNet pipeline they are resized to the network input (here with keras-image-helper's filter,
which the serving runtime uses too). The region route resizes partial edge tiles the same way.
"""


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every patch at 50x50 with its label, split and patient, in manifest order."""
    manifest = load_manifest(TASK)
    images = load_images(TASK, list(manifest["path"]), PREPROCESSING)
    return images, manifest["label"].to_numpy(), manifest["split"].to_numpy(), manifest["patient_id"].to_numpy()


def load_splits(limit: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    images, labels, split, patients = load_data()
    splits = {}
    for name in ("train", "val", "test"):
        rows = np.flatnonzero(split == name)
        if limit:
            rows = rows[:limit]
        splits[name] = (images[rows], labels[rows], patients[rows])
    return splits


"""
## Models
"""


def cancernet(width: int = 1, dropout_rate: float = 0.25, bn_momentum: float = 0.99, per_image_norm: bool = False):
    """CancerNet as in the seed: 3x3 depthwise-separable blocks (1, 2, 3 convs) with batch norm,
    max-pooling and dropout, then Dense(256) and softmax. ``width`` multiplies the filters;
    ``per_image_norm`` standardises each patch's colour channels in-graph (a light stain
    normalisation: slides from different labs differ mostly in overall colour and brightness)."""
    import keras
    from keras import layers, ops

    @keras.saving.register_keras_serializable(package="oncoserve")
    class PerImageStandardisation(layers.Layer):
        def call(self, x):
            mean = ops.mean(x, axis=(1, 2), keepdims=True)
            std = ops.sqrt(ops.mean(ops.square(x - mean), axis=(1, 2), keepdims=True))
            return (x - mean) / (std + 1e-3)

    inputs = keras.Input((PATCH, PATCH, 3), name="patch")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    if per_image_norm:
        x = PerImageStandardisation(name="per_image_standardisation")(x)
    for filters, convs in ((32, 1), (64, 2), (128, 3)):
        for _ in range(convs):
            x = layers.SeparableConv2D(filters * width, 3, padding="same", activation="relu")(x)
            x = layers.BatchNormalization(momentum=bn_momentum)(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout_rate)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.BatchNormalization(momentum=bn_momentum)(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(2, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"cancernet_w{width}")


# Batch-norm momentum 0.9 instead of Keras' 0.99 in all three: with 0.99 the moving statistics lag
# behind the weights and inference-mode validation AUC collapsed (0.84 → 0.34 in three epochs)
# while training-mode AUC stayed at 0.90 — measured, see the model card.
CANDIDATES = {
    "cancernet_seed": {"width": 1, "optimizer": "adagrad", "stain_jitter": False, "per_image_norm": False},
    "cancernet_stain_jitter": {"width": 1, "optimizer": "adam", "stain_jitter": True, "per_image_norm": False},
    "cancernet_stain_jitter_norm": {"width": 1, "optimizer": "adam", "stain_jitter": True, "per_image_norm": True},
}


def train_transfer_candidate(splits, *, backbone: str, weights: str, tuning: dict[str, Any], size: int, seed: int):
    """MobileNetV2 whose every layer ``train.finetune`` tuned on augmented IDC patches (50 px
    upscaled in-graph to ``size``, the side it was tuned at, so the served model still takes 50x50 patches), then a
    linear softmax head fitted on its pooled features, L2 chosen on validation AUC. Returns the model and
    the tuning run's per-epoch curves (from ``tuning``, that run's record)."""
    import keras
    from keras import layers

    extractor = transfer.build_feature_extractor(backbone, weights, input_size=size, source_size=PATCH)
    tag = f"{transfer.cache_tag(backbone, weights)}_{size}"
    features = {name: transfer.pooled_features(TASK, f"{tag}_{name}", extractor, splits[name][0])
                for name in ("train", "val")}
    y_val = splits["val"][1]
    head = transfer.select_linear_head(
        features["train"], splits["train"][1], 2, val=(features["val"], y_val), seed=seed, name="probabilities",
        score=lambda p: common.binary_metrics(y_val, p[:, 1], 0.5)["roc_auc"])
    inputs = keras.Input((PATCH, PATCH, 3), name="patch")
    model = keras.Model(inputs, head["dense"](layers.GlobalAveragePooling2D()(extractor(inputs))), name=TRANSFER)
    history = {"loss": tuning.get("train_loss", []), "val_idc_auc": tuning.get("val_score", [])}
    print(f"[{TRANSFER}] linear head l2={head['l2']:g}", flush=True)
    return model, history


def dataset(images, labels, *, training: bool, stain_jitter: bool, batch_size: int, seed: int):
    import tensorflow as tf

    from train import augment

    data = tf.data.Dataset.from_tensor_slices((images, labels))
    if training:
        data = data.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)

        def augmented(image, label):
            image = augment.flips_and_right_angles(image)
            if stain_jitter:
                image = augment.hed_jitter(image)
                image = augment.brightness_contrast(image)
            return tf.cast(image, tf.float32), label

        data = data.map(augmented, num_parallel_calls=2, deterministic=True)
    else:
        data = data.map(lambda image, label: (tf.cast(image, tf.float32), label))
    return data.batch(batch_size).prefetch(2)


def train_candidate(name: str, splits, *, epochs: int, seed: int, batch_size: int = 64):
    import keras

    spec = CANDIDATES[name]
    common.seed_everything(seed)
    model = cancernet(spec["width"], bn_momentum=0.9, per_image_norm=spec["per_image_norm"])
    optimizer = (keras.optimizers.Adagrad(learning_rate=1e-2) if spec["optimizer"] == "adagrad"
                 else keras.optimizers.Adam(learning_rate=1e-3))
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x_train, y_train, _ = splits["train"]
    x_val, y_val, _ = splits["val"]
    class_weight = common.balanced_class_weight(y_train, 2)  # ~2.7:1 imbalance
    print(f"[{name}] {model.count_params():,} parameters; class weights {class_weight}", flush=True)

    class SoftmaxAUC(keras.callbacks.Callback):
        """val AUC of p(IDC): Keras' AUC metric on a 2-column softmax would mix both columns."""

        def on_epoch_end(self, epoch, logs=None):
            from sklearn.metrics import roc_auc_score

            p = self.model.predict(dataset(x_val, y_val, training=False, stain_jitter=False, batch_size=256,
                                           seed=seed), verbose=0)[:, 1]
            logs["val_idc_auc"] = float(roc_auc_score(y_val, p))
            print(f"[{name}] epoch {epoch + 1}: val IDC AUC {logs['val_idc_auc']:.4f}", flush=True)

    history = model.fit(
        dataset(x_train, y_train, training=True, stain_jitter=spec["stain_jitter"], batch_size=batch_size, seed=seed),
        validation_data=dataset(x_val, y_val, training=False, stain_jitter=False, batch_size=256, seed=seed),
        epochs=epochs, class_weight=class_weight, verbose=2,
        callbacks=[SoftmaxAUC(),
                   keras.callbacks.EarlyStopping(monitor="val_idc_auc", mode="max", patience=6,
                                                 restore_best_weights=True)],
    )
    return model, history.history


def previous_experiments() -> dict[str, Any]:
    path = common.model_json_path(TASK)
    experiments = common.read_model_json(TASK)["training"].get("experiments") if path.is_file() else None
    return {"experiments": experiments} if experiments else {}


def transfer_size(tuning: dict[str, Any]) -> int:
    """The backbone input side the weights were tuned at (records before ``--input-size`` existed: 96)."""
    return int(tuning.get("input_size", TRANSFER_SIZE))


def transfer_spec(backbone: str, size: int) -> dict[str, Any]:
    """The transfer candidate described in the columns of the CancerNet candidates."""
    return {"network": f"{backbone} at {size} px, every layer tuned, + linear head", "optimizer": "adam",
            "stain_jitter": True, "per_image_norm": False}


def predict_probability(model, images: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(images.astype(np.float32), batch_size=256, verbose=0))[:, 1]


"""
## Evaluate
"""


def per_patient(labels: np.ndarray, p: np.ndarray, patients: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy per patient (patients with >= 10 patches): the spread a pathologist would see."""
    accuracies = []
    for patient in np.unique(patients):
        rows = patients == patient
        if rows.sum() >= 10:
            accuracies.append(float(((p[rows] >= threshold) == labels[rows]).mean()))
    q = np.percentile(accuracies, [10, 25, 50, 75, 90])
    return {"patients": len(accuracies), "accuracy_p10": q[0], "accuracy_p25": q[1], "accuracy_median": q[2],
            "accuracy_p75": q[3], "accuracy_p90": q[4], "accuracy_min": float(min(accuracies)),
            "values": accuracies}


def stitched_region(images: np.ndarray, labels: np.ndarray, rows: int, cols: int, seed: int):
    """A synthetic region: a rows x cols grid of held-out 50x50 patches (label grid returned too)."""
    rng = np.random.default_rng(seed)
    full = np.flatnonzero([img.shape[:2] == (PATCH, PATCH) for img in images])
    chosen = rng.choice(full, rows * cols, replace=False)
    region = images[chosen].reshape(rows, cols, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
    return region.reshape(rows * PATCH, cols * PATCH, 3), labels[chosen].reshape(rows, cols)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the IDC patch classifier.")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--candidates", nargs="*", default=[*CANDIDATES, TRANSFER], choices=[*CANDIDATES, TRANSFER])
    parser.add_argument("--backbone", default="mobilenet_v2", choices=sorted(transfer.BACKBONES),
                        help=f"backbone of the {TRANSFER} candidate")
    parser.add_argument("--weights", help="its weights: a file (shipped: the backbone tuned by `make finetune-histopathology`), "
                                           "'default' (ImageNet, ../shared) or 'imagenet' (Keras cache)")
    parser.add_argument("--limit", type=int, help="patches per split (smoke runs)")
    parser.add_argument("--card-only", action="store_true")
    args = common.parse_shipped_args(parser, TASK, argv)
    if args.card_only:
        return write_card(common.read_model_json(TASK))
    started = time.time()
    splits = load_splits(args.limit)
    for name, (_, y, patients) in splits.items():
        print(f"{name}: {len(y)} patches, {len(np.unique(patients))} patients, {y.mean():.1%} IDC", flush=True)

    # The record of the run that tuned the transfer candidate's weights (its finetune.json), if any.
    backbone_tuning = finetune.recorded_fine_tuning(args.weights) if TRANSFER in args.candidates else {}
    tuning_record = backbone_tuning.get("backbone_tuning", {})
    transfer_px = transfer_size(tuning_record)
    trained = {}
    for name in args.candidates:
        if name == TRANSFER:
            model, history = train_transfer_candidate(splits, backbone=args.backbone, weights=args.weights,
                                                      tuning=tuning_record, size=transfer_px, seed=args.seed)
        else:
            model, history = train_candidate(name, splits, epochs=args.epochs, seed=args.seed)
        p_val = predict_probability(model, splits["val"][0])
        trained[name] = (model, history, common.binary_metrics(splits["val"][1], p_val, 0.5)["roc_auc"])
        print(f"[{name}] val AUC {trained[name][2]:.4f}", flush=True)
    name = max(trained, key=lambda n: trained[n][2])
    model, history, _ = trained[name]
    print(f"chosen on validation: {name}", flush=True)
    common.export_saved_model(model, TASK)  # for `make bench` (TensorFlow and ONNX Runtime baselines)

    x_val, y_val, _ = splits["val"]
    x_test, y_test, patients_test = splits["test"]

    """
    ## Convert: float32, float16, int8 — ship by the shared rule (convert.choose_variant)
    """
    from convert.convert import choose_variant, convert_model, eligible_variants, run_tflite, shipping_rule, tflite_latency_ms

    calibration = splits["train"][0][np.random.default_rng(args.seed).permutation(len(splits["train"][1]))[:300]]
    samples = np.concatenate([calibration, x_val[:200]]).astype(np.float32)
    variants = convert_model(model, samples, variants=("float32", "float16", "int8"), float_bound=1e-4)
    region_batch = x_test[:256].astype(np.float32)
    comparison = {}
    for variant, converted in variants.items():
        p = next(iter(run_tflite(converted.content, x_test.astype(np.float32)).values()))[:, 1]
        comparison[variant] = {**converted.summary(),
                               "test_auc": common.binary_metrics(y_test, p, 0.5)["roc_auc"],
                               "latency_ms_256_patches_1_thread": tflite_latency_ms(converted.content, region_batch),
                               "p_test": p}
        print(f"{variant}: {len(converted.content):,} bytes, test AUC {comparison[variant]['test_auc']:.4f}, "
              f"{comparison[variant]['latency_ms_256_patches_1_thread']:.1f} ms / 256 patches", flush=True)
    eligible = eligible_variants(comparison, ("test_auc",))
    shipped = choose_variant(comparison, eligible, "latency_ms_256_patches_1_thread")
    artifact = variants[shipped].write(common.function_dir(TASK) / "model" / "model.tflite")
    p_test = comparison[shipped].pop("p_test")
    for entry in comparison.values():
        entry.pop("p_test", None)
    # The threshold is the shipped variant's: quantisation moves probabilities near it (int8 moved validation
    # sensitivity 0.891 → 0.863 at the float model's threshold in the first v1.2.0 run).
    p_val = next(iter(run_tflite(variants[shipped].content, x_val.astype(np.float32)).values()))[:, 1]
    threshold = common.choose_threshold(y_val, p_val, min_sensitivity=MIN_SENSITIVITY)
    print(f"shipping {shipped}; threshold {threshold}", flush=True)

    test_metrics = common.binary_metrics(y_test, p_test, threshold["threshold"])
    spread = per_patient(y_test, p_test, patients_test, threshold["threshold"])
    print(f"test: {common.rounded({k: v for k, v in test_metrics.items() if k != 'confusion'})}", flush=True)
    print(f"test confusion {test_metrics['confusion']}; per-patient accuracy median {spread['accuracy_median']:.3f}",
          flush=True)

    plots = write_plots(history, y_val, x_val, model, y_test, p_test, test_metrics, spread, x_test, variants[shipped],
                        threshold["threshold"], args.seed)
    candidates = {n: {"val_auc": trained[n][2], **CANDIDATES.get(n, transfer_spec(args.backbone, transfer_px))}
                  for n in trained}
    tuned = name == TRANSFER
    changelog = {"1.0.0": "First release: cancernet_stain_jitter_norm, float32 TFLite.",
                 "1.0.1": "Same network (cancernet_stain_jitter_norm), float16 TFLite: the shipping rule now takes "
                          "the smallest variant within 10% of the fastest (float32 vs float16 was decided by timing "
                          "noise)."}
    if tuned:
        changelog["1.1.0"] = ("mobilenet_v2_96px_tuned (MobileNetV2 tuned end to end on H&E patches by train.finetune, "
                              "16 epochs at 96 px) joins the candidates and wins on validation; int8 TFLite.")
        changelog["1.2.0"] = (f"{TRANSFER}: the backbone tuned {tuning_record.get('epochs_run', '?')} epochs at "
                              f"{transfer_px} px (cosine schedule; validation AUC of the tuning run "
                              f"{max(tuning_record.get('val_score', [0])):.4f}, 16 epochs: {V1_1_TUNING_AUC:.4f}); {shipped} TFLite.")
    metadata = {
        "name": "oncoserve-histopathology-idc",
        "task": TASK,
        "version": "1.2.0" if tuned else "1.0.1",
        "changelog": changelog,
        "artifact": {"file": artifact.name, "sha256": variants[shipped].sha256, "bytes": len(variants[shipped].content),
                     "variant": shipped, "max_abs_diff_vs_keras": variants[shipped].max_abs_diff},
        "input": {"kind": "image", "dtype": "float32", "shape": [None, PATCH, PATCH, 3], "value_range": [0, 255],
                  "channels": ["R", "G", "B"], "patch_size": PATCH},
        "preprocessing": {"in_graph": ([f"bilinear upscale to {transfer_px} px", "MobileNetV2 scaling to [-1, 1]"]
                                       if tuned else ["Rescaling 1/255"]),
                          "in_runtime": PREPROCESSING.to_metadata()},
        "output": {"labels": LABELS, "positive_label": "idc", "threshold": threshold["threshold"],
                   "threshold_rule": threshold["rule"],
                   "region": {"tile": PATCH, "stride": PATCH, "min_edge_tile": 10,
                              "background": "tiles with mean brightness > 220 and saturation < 0.08 are not scored",
                              "edge": "partial edge tiles (>= 10 px) are resized to 50x50 like the dataset's edge "
                                      "patches; thinner slivers are not scored"}},
        "training": {"seed": args.seed, "epochs": args.epochs, "chosen": name, "candidates": candidates,
                     "threshold": threshold, "command": "make train-histopathology",
                     "seconds": round(time.time() - started, 1),
                     **({"backbone": args.backbone, "weights": args.weights} if TRANSFER in trained else {}),
                     **backbone_tuning,
                     # validation-only measurements by `make experiment-histopathology`: kept across retraining
                     **previous_experiments()},
        "conversion": {"variants": comparison, "shipped": shipped,
                       "rule": shipping_rule("test AUC", "LiteRT, 1 thread, 256 patches")},
        "metrics": {
            "val": {**common.binary_metrics(y_val, p_val, threshold["threshold"]), "slice": "validation patients (41)"},
            "test": {**test_metrics, "slice": "test patients (41), patient-held-out, never used for selection"},
            "test_per_patient": {k: v for k, v in spread.items() if k != "values"} | {"slice": "test patients with >= 10 patches"},
        },
        "data": {
            "source": "Breast Histopathology Images, IDC_regular_ps50_idx5 (Janowczyk & Madabhushi 2016), "
                      "10,147-patch subset from silainanir/Detection-of-Invasive-Ductal-Carcinoma @49bba5c",
            "citation": "Janowczyk A, Madabhushi A. J Pathol Inform 2016;7:29 doi:10.4103/2153-3539.186902; "
                        "Cruz-Roa A et al. Proc SPIE 9041, 2014 doi:10.1117/12.2043872",
            "license": "Kaggle listing commonly reported as CC0 1.0 (not verifiable offline); source repositories "
                       "carry no licence; cite both papers",
            "splits": {n: {"patches": int(len(s[1])), "patients": int(len(np.unique(s[2])))} for n, s in splits.items()},
        },
        "plots": plots,
        "intended_use": "Research and teaching: patch-level IDC detection and region heatmaps on H&E breast tissue "
                        "scanned like the source dataset (40x, 50x50 px patches).",
        "out_of_scope": "Diagnosis; grading; other stains, tissues or magnifications; slides from other scanners "
                        "without revalidation.",
        "limitations": "Patch labels come from coarse region annotations; 276 patients from one source; colour "
                       "and scanner shift beyond the stain jitter is untested. Research software, not a medical device.",
    }
    write_card(common.write_model_json(TASK, metadata))
    print(f"done in {time.time() - started:.0f} s", flush=True)


def write_plots(history, y_val, x_val, model, y_test, p_test, test_metrics, spread, x_test, shipped, threshold,
                seed) -> list[str]:
    from convert.convert import run_tflite

    plt = common._pyplot()
    names = []
    common.plot_history(TASK, {k: v for k, v in history.items()
                               if k in ("loss", "val_loss", "accuracy", "val_accuracy", "val_idc_auc") and v})
    names.append("plots/training_curves.png")
    common.plot_roc_pr(TASK, {"test": (y_test, p_test), "val": (y_val, predict_probability(model, x_val))}, "roc_pr")
    names.append("plots/roc_pr.png")
    c = test_metrics["confusion"]
    common.plot_confusion(TASK, common.confusion_grid(c), LABELS,
                          f"Test patches (threshold {threshold:.2f})", "confusion_test")
    names.append("plots/confusion_test.png")

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(spread["values"], bins=20, color="tab:purple")
    ax.set(xlabel="accuracy per test patient", ylabel="patients", title="Per-patient spread (test)")
    fig.tight_layout()
    fig.savefig(common.plots_dir(TASK) / "per_patient.png", dpi=110)
    plt.close(fig)
    names.append("plots/per_patient.png")

    # Example heatmap: a stitched region of held-out test patches, scored tile by tile.
    region, truth = stitched_region(x_test, y_test, 8, 8, seed)
    tiles = region.reshape(8, PATCH, 8, PATCH, 3).transpose(0, 2, 1, 3, 4).reshape(64, PATCH, PATCH, 3)
    p = next(iter(run_tflite(shipped.content, tiles.astype(np.float32)).values()))[:, 1].reshape(8, 8)
    fig, axes = plt.subplots(1, 3, figsize=(11, 4))
    axes[0].imshow(region)
    axes[0].set_title("stitched test patches")
    axes[1].imshow(truth, cmap="Reds", vmin=0, vmax=1)
    axes[1].set_title("annotation (IDC = red)")
    axes[2].imshow(region)
    axes[2].imshow(np.kron(p, np.ones((PATCH, PATCH))), cmap="jet", alpha=0.45, vmin=0, vmax=1)
    axes[2].set_title("p(IDC) heatmap")
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(common.plots_dir(TASK) / "example_heatmap.png", dpi=100)
    plt.close(fig)
    names.append("plots/example_heatmap.png")
    return names


def transfer_verdict(metadata: dict[str, Any]) -> str:
    best = max(c["val_auc"] for c in metadata["training"]["experiments"]["candidates"].values())
    if best > metadata["training"]["candidates"][metadata["training"]["chosen"]]["val_auc"]:
        return ": this experiment is better on validation and should replace the shipped model."
    if metadata["training"]["chosen"] == TRANSFER:
        return (": frozen ImageNet features, or only the last stage tuned, carry less than a small network trained "
                "on the patches; every layer tuned on the patches (the shipped candidate) carries more.")
    return (": ImageNet features of a 50 px tissue patch blown up to 96 px carry less than a small network "
            "trained on the patches themselves, so CancerNet stays.")


def goal_text(test: dict[str, Any]) -> str:
    """The issue's goal and the seed's figures, each said met or not from the test metrics (as printed)."""
    def verdict(value: float, bound: float) -> str:
        return f"{value:.3f}, {'met' if round(value, 3) >= bound else '**not met**'}"

    def against(value: float, bound: float) -> str:
        value = round(value, 3)
        return "beaten" if value > bound else "not beaten" if value < bound else "level"

    beaten = ", ".join(f"{name} {test[name]:.3f} vs {bound:.2f} ({against(test[name], bound)})"
                       for name, bound in SEED_FIGURES.items())
    return (f"Goal: balanced accuracy ≥ 0.88 ({verdict(test['balanced_accuracy'], 0.88)}) and sensitivity ≥ "
            f"{MIN_SENSITIVITY} ({verdict(test['sensitivity'], MIN_SENSITIVITY)}). Against the seed's figures: {beaten}.")


def conversion_note(conversion: dict[str, Any]) -> str:
    """What the variant table shows, in words, from its numbers."""
    variants, shipped = conversion["variants"], conversion["shipped"]
    lossy = [v for v in variants if variants["float32"]["test_auc"] - variants[v]["test_auc"] > 0.005]
    fastest = min((v for v in variants if v not in lossy), key=lambda v: variants[v]["latency_ms_256_patches_1_thread"])
    out = f"{' and '.join(lossy)} lose{'s' if len(lossy) == 1 else ''} more than 0.005 test AUC. " if lossy else ""
    rest = " of the rest" if lossy else ""
    if shipped == fastest:
        return out + f"{shipped} is the fastest{rest} and ships:"
    return out + f"{shipped} runs within 10% of the fastest{rest} ({fastest}) in a smaller file, so it ships:"


def tuning_runs_text() -> str:
    return (finetune.tuning_runs_table(TASK, TUNING_RUNS, "validation AUC", "val AUC")
            + "\n\nAt 128 px the refitted linear head reached validation AUC 0.9331 (96 px, 16 epochs: 0.9316) "
              "but validation balanced accuracy at the sensitivity rule 0.855 (0.856), for 1.8× the compute per "
              "patch, so the longer schedule at 96 px was run instead.")


def write_card(metadata: dict[str, Any]) -> None:
    test = metadata["metrics"]["test"]
    conversion = common.conversion_table(metadata["conversion"], {"test_auc": "test AUC"},
                                         ("latency_ms_256_patches_1_thread", "ms / 256 patches (1 thread)"))
    candidates = "\n".join(f"| {n} | {c.get('network', 'CancerNet')} | {c['val_auc']:.4f} | "
                           f"{'yes' if c['stain_jitter'] else 'no'} | {'yes' if c['per_image_norm'] else 'no'} | "
                           f"{c['optimizer']} |" for n, c in metadata["training"]["candidates"].items())
    seed_row = ("| CancerNet (seed, random patch split) | "
                + " | ".join(f"{SEED_FIGURES[k]:.2f}" for k in ("accuracy", "sensitivity", "specificity")) + " | — | — | — |")
    experiments = metadata["training"].get("experiments")
    transfer_rows = "" if not experiments else (
        f"\n\nMobileNetV2 (ImageNet) on patches upscaled to {experiments['run']['size']} px, measured on the same "
        f"validation patients by `{experiments['run']['command']}` (not shipped unless it wins):\n\n"
        "| candidate | val AUC | val sensitivity | val specificity | val balanced accuracy |\n|---|---|---|---|---|\n"
        + "\n".join(f"| {n} | {c['val_auc']:.4f} | {c['val_sensitivity']:.3f} | {c['val_specificity']:.3f} | "
                    f"{c['val_balanced_accuracy']:.3f} |" for n, c in experiments["candidates"].items())
        + f"\n\n(Threshold for validation sensitivity ≥ {MIN_SENSITIVITY}, as for the shipped model.) Best of these: "
          f"val AUC {max(c['val_auc'] for c in experiments['candidates'].values()):.4f} against "
          f"{metadata['training']['candidates'][metadata['training']['chosen']]['val_auc']:.4f} for the shipped "
          f"candidate{transfer_verdict(metadata)}")
    overview = f"""
Classifies a 50x50 px H&E patch of breast tissue (40x) as invasive ductal carcinoma (**idc**) or
not (**non_idc**), and scores larger regions tile by tile (`/histopathology/region`: 50 px tiles,
stride 50, probability grid, IDC area fraction, heatmap PNG). Shipped network:
**{metadata['training']['chosen']}**, as a **{metadata['artifact']['variant']}** TFLite model; decision
threshold **{metadata['output']['threshold']:.3f}** ({metadata['output']['threshold_rule']}).
"""
    evaluation = f"""
**Against the seed** (test patients never seen in training; the seed split patches at random, which
lets patches of one patient sit on both sides and flatters its figures):

| model | accuracy | sensitivity | specificity | balanced accuracy | F1 | ROC-AUC |
|---|---|---|---|---|---|---|
{seed_row}
| published anchors, same data | — | — | — | 0.847 | 0.765 | — |
| **this model, test** | {test['accuracy']:.3f} | {test['sensitivity']:.3f} | {test['specificity']:.3f} | {test['balanced_accuracy']:.3f} | {test['f1']:.3f} | {test['roc_auc']:.3f} |

Confusion on test (threshold {test['threshold']:.3f}): TP {test['confusion']['tp']}, FN {test['confusion']['fn']},
FP {test['confusion']['fp']}, TN {test['confusion']['tn']}. Per-patient accuracy (test patients with
≥ 10 patches): median {metadata['metrics']['test_per_patient']['accuracy_median']:.3f}, 10th percentile
{metadata['metrics']['test_per_patient']['accuracy_p10']:.3f}, worst {metadata['metrics']['test_per_patient']['accuracy_min']:.3f}.
{goal_text(test)}

Candidates (chosen on validation AUC):

| candidate | network | val AUC | H&E stain jitter | per-image colour standardisation | optimiser |
|---|---|---|---|---|---|
{candidates}{transfer.backbone_tuning_text(metadata['training'].get('backbone_tuning'), metadata['training'].get('weights', ''), cams=False)}

{tuning_runs_text()}{transfer_rows}

Training notes: all CancerNet candidates use batch-norm momentum 0.9 instead of Keras' 0.99 — with
0.99 the seed network's inference-mode validation AUC fell from 0.84 to 0.34 within three epochs
while its training-mode AUC stayed near 0.90 (the moving statistics lagged the weights; measured on
this data before the runs above). Validation patients differ from training patients mostly in
colour, which is why H&E stain jitter (plus per-patch colour standardisation for CancerNet) helps.

Threshold: chosen on the shipped TFLite variant's validation outputs (since v1.2.0). Until then it
was chosen on the float Keras model; at that threshold the first v1.2.0 run's int8 model had
validation sensitivity 0.863, below the 0.88 rule, so the rule now reads the shipped variant. That
fix was made after the first run's test figures had been printed (balanced accuracy 0.8795,
sensitivity 0.875, specificity 0.884) — disclosed because the test figures then rose.

Conversion (rule: {metadata['conversion']['rule']}). {conversion_note(metadata['conversion'])}

{conversion}
"""
    common.write_model_card(TASK, metadata, overview=overview, evaluation=evaluation)


if __name__ == "__main__":
    main()
