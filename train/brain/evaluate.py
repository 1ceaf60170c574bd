"""
## Thresholds and evaluation, through the TFLite artifact

Recall first: per-modality thresholds chosen on the shipped variant's validation outputs, then
test figures per modality, for the tumour type and the modality, and the robustness checks: does
size or colour alone flip the answer, and does the tumour evidence sit at the image's edges?
"""

from __future__ import annotations

from typing import Any

import numpy as np

from oncoserve_runtime import decode_image, normalise_cam, to_grey_rgb

from convert.convert import run_tflite

from train import core
from train.brain.data import MODALITIES, TASK, mri_sources

MIN_RECALL = 0.98  # the goals on test, within every MRI source (issue 32)
MIN_SPECIFICITY = 0.90
MIN_TYPE_ACCURACY = 0.92
# Thresholds aim one point higher on validation: 120 CT tumours and 196 / 112 per MRI source pin
# recall down only to a point or two, and a threshold set at exactly 0.98 missed the goal on test
# (MRI 0.969, the 15-epoch experiment). Decided before any model trained with it was evaluated on test.
VAL_RECALL_TARGET = 0.99


def evaluate_variant(content: bytes, data: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """A converted variant's test tumour AUC per modality, and its validation and test outputs."""
    split = data["split"]
    outputs = {"val": core.tflite_outputs(content, data["images"], split == "val"),
               "test": core.tflite_outputs(content, data["images"], split == "test")}
    test_modality, test_tumor = data["modality"][split == "test"], data["tumor"][split == "test"]
    auc = {m: core.binary_metrics(test_tumor[test_modality == i], outputs["test"]["tumor"][test_modality == i, 1],
                                  0.5)["roc_auc"] for i, m in enumerate(MODALITIES)}
    return {"test_auc_ct": auc["ct"], "test_auc_mri": auc["mri"]}, outputs


def choose_thresholds(data: dict[str, Any], val_out: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per modality, the highest threshold with validation tumour recall >= the target; for MRI within
    every MRI source, not only over the pooled images (a big source would hide a small one)."""
    val = data["split"] == "val"
    thresholds = {}
    for i, modality in enumerate(MODALITIES):
        rows, p_tumour = val & (data["modality"] == i), val_out["tumor"][data["modality"][val] == i, 1]
        if modality == "mri":
            thresholds[modality] = core.choose_threshold_within_every_group(
                data["tumor"][rows], p_tumour, data["source"][rows], min_sensitivity=VAL_RECALL_TARGET,
                group_name="MRI source")
        else:
            thresholds[modality] = core.choose_threshold(data["tumor"][rows], p_tumour, min_sensitivity=VAL_RECALL_TARGET)
    return thresholds


def test_metrics(data: dict[str, Any], test_out: dict[str, np.ndarray], thresholds) -> tuple[dict[str, Any], np.ndarray]:
    """(model.json's test metrics per modality, over both, type and modality; the type confusion matrix)."""
    test = data["split"] == "test"
    metrics = {}
    for i, modality in enumerate(MODALITIES):
        t = data["modality"][test] == i
        m = core.binary_metrics(data["tumor"][test][t], test_out["tumor"][t, 1], thresholds[modality]["threshold"])
        metrics[f"test_{modality}"] = {**m, "recall": m["sensitivity"],
                                       "slice": f"{modality.upper()} test images (tumour vs healthy)"}
        print(f"test {modality}: recall {m['sensitivity']:.3f}, specificity {m['specificity']:.3f}, "
              f"precision {m['precision']:.3f}, AUC {m['roc_auc']:.4f} at threshold {m['threshold']:.3f}", flush=True)
    metrics["test"] = both_modalities(metrics["test_ct"], metrics["test_mri"])
    typed_test = data["type"][test] >= 0
    type_pred, type_true = test_out["tumor_type"][typed_test].argmax(1), data["type"][test][typed_test]
    type_confusion = np.zeros((3, 3), int)
    for a, b in zip(type_true, type_pred):
        type_confusion[a, b] += 1
    metrics["test_mri_type"] = {"n": int(typed_test.sum()), "accuracy": float((type_pred == type_true).mean()),
                                "confusion": type_confusion.tolist(), "slice": "typed MRI tumour test images"}
    metrics["test_modality"] = {"n": int(test.sum()),
                                "accuracy": float((test_out["modality"].argmax(1) == data["modality"][test]).mean()),
                                "slice": "all test images (predicted modality)"}
    print(f"test MRI type accuracy {metrics['test_mri_type']['accuracy']:.3f}; modality accuracy "
          f"{metrics['test_modality']['accuracy']:.3f}", flush=True)
    metrics["test_mri_by_source"] = by_source(data, test_out, thresholds["mri"]["threshold"])
    return metrics, type_confusion


def by_source(data: dict[str, Any], test_out: dict[str, np.ndarray], threshold: float) -> dict[str, dict[str, Any]]:
    """Each MRI source's test images at the shipped MRI threshold: tumour recall, specificity, AUC and
    the type accuracy on its typed tumours."""
    test = data["split"] == "test"
    mri, source = data["modality"][test] == 1, data["source"][test]
    result = {}
    for name in np.unique(source[mri]):
        rows = mri & (source == name)
        figures = tumour_and_type_figures(data["tumor"][test][rows], test_out["tumor"][rows, 1], data["type"][test][rows],
                                          test_out["tumor_type"][rows], threshold)
        result[str(name)] = {**figures, "slice": f"MRI test images of {name} (tumour vs healthy; type on typed tumours)"}
        print(f"test MRI {name}: recall {figures['recall']:.3f}, specificity {figures['specificity']:.3f}, "
              f"AUC {figures['roc_auc']:.4f}, type accuracy {figures['type_accuracy']:.3f}", flush=True)
    return result


def tumour_and_type_figures(tumour: np.ndarray, p_tumour: np.ndarray, tumour_type: np.ndarray, p_type: np.ndarray,
                            threshold: float) -> dict[str, Any]:
    """Tumour detection at ``threshold`` and the type accuracy on the typed tumours, for one set of MRI images."""
    m = core.binary_metrics(tumour, p_tumour, threshold)
    typed = tumour_type >= 0
    return {**m, "recall": m["sensitivity"], "type_accuracy": float((p_type[typed].argmax(1) == tumour_type[typed]).mean()),
            "type_n": int(typed.sum())}


def both_modalities(ct: dict[str, Any], mri: dict[str, Any]) -> dict[str, Any]:
    """Tumour detection over all test images, each at its own modality's threshold (AUCs stay per modality)."""
    c = {k: ct["confusion"][k] + mri["confusion"][k] for k in ("tp", "fn", "fp", "tn")}
    recall, specificity = c["tp"] / (c["tp"] + c["fn"]), c["tn"] / (c["tn"] + c["fp"])
    return {"n": ct["n"] + mri["n"], "recall": recall, "sensitivity": recall, "specificity": specificity,
            "precision": c["tp"] / (c["tp"] + c["fp"]), "accuracy": (c["tp"] + c["tn"]) / (ct["n"] + mri["n"]),
            "confusion": c, "slice": "all test images, CT and MRI at their own thresholds"}


def robustness_checks(content: bytes, data, test: np.ndarray, thresholds, seed: int) -> dict[str, Any]:
    """Does size or colour alone flip the answer? Agreement of the tumour label on test images after
    (a) a strong colour tint, (b) a 3x downscale, (c) a non-square crop-free pad — each put through
    the full serving path (greyscale, keras-image-helper resize)."""
    from PIL import Image


    manifest = data["manifest"]
    root = core.task_data_dir(TASK)
    rows = np.random.default_rng(seed).permutation(np.flatnonzero(test))[:120]

    def label(images: list[Image.Image], modality: np.ndarray) -> np.ndarray:
        batch = np.stack([data["preprocessing"].to_array(to_grey_rgb(img))[0] for img in images])
        p = run_tflite(content, batch.astype(np.float32))["tumor"][:, 1]
        limits = np.array([thresholds[MODALITIES[m]]["threshold"] for m in modality])
        return p >= limits


    originals = [decode_image((root / manifest["path"].iloc[r]).read_bytes()) for r in rows]
    modality = data["modality"][rows]
    base = label(originals, modality)

    def tint(img):
        arr = np.asarray(img, dtype=np.float32) * np.array([1.0, 0.6, 0.3])
        return Image.fromarray(arr.clip(0, 255).astype(np.uint8))

    def shrink(img):
        return img.resize((max(8, img.width // 3), max(8, img.height // 3)), Image.BILINEAR)

    def pad(img):
        canvas = Image.new("RGB", (img.width + img.width // 2, img.height), (0, 0, 0))
        canvas.paste(img, (img.width // 4, 0))
        return canvas

    result = {"n": int(len(rows))}
    for name, change in (("colour_tint", tint), ("downscale_3x", shrink), ("pad_to_wide", pad)):
        result[f"agreement_{name}"] = float((label([change(img) for img in originals], modality) == base).mean())
    result.update(border_cam_share(content, data, test))
    print(f"robustness: {result}", flush=True)
    return result


def border_cam_share(content: bytes, data, test: np.ndarray) -> dict[str, Any]:
    """Where does the tumour evidence sit? Share of positive CAM mass on the outer ring of the
    feature grid (24 of 49 cells, ~49% of the image: corners and edges, where scanners burn in
    text), per modality (and MRI source) and class, over all test images. Much above ~0.5 means the
    edges drive it."""
    def share(members: np.ndarray) -> float:
        values = []
        for cam in core.tflite_outputs(content, data["images"], np.flatnonzero(test & members))["tumor_cam"]:
            positive = normalise_cam(cam)
            if positive.sum() > 0:
                ring = positive.copy()
                ring[1:-1, 1:-1] = 0
                values.append(ring.sum() / positive.sum())
        return float(np.mean(values)) if values else 0.0

    classes = ((1, "tumor"), (0, "healthy"))
    shares: dict[str, Any] = {f"border_cam_share_{modality}_{name}": share((data["modality"] == m) & (data["tumor"] == cls))
                              for m, modality in enumerate(MODALITIES) for cls, name in classes}
    mri = data["modality"] == 1
    if len(mri_sources(data)) > 1:
        shares["border_cam_share_mri_by_source"] = {
            s: {name: share(mri & (data["source"] == s) & (data["tumor"] == cls)) for cls, name in classes}
            for s in mri_sources(data)}
    return shares
