"""
## The guard measured: in-distribution test images vs each out-of-distribution family

Through the shipped TFLite artifact and the serving preprocessing, on the test split: AUROC of the
score (in-distribution vs each family), the share refused in each, the share of in-distribution
test images refused, the score per source, and whether ``atypical`` flags the model's errors more
often than its correct answers. Written to ``functions/<task>/ood_evaluation.json``; the card cites it.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import numpy as np

from train.ood import families

# Per task: the serving transform of a decoded image, the per-image truth and decision from the manifest row.
ID_SAMPLE = 1500  # in-distribution test images scored (all when fewer)
OTHER_PER_TASK = 300
CORRUPTED_SAMPLE = 150


def serving_transform(task: str) -> Callable:
    from oncoserve_runtime import to_grey_rgb

    return to_grey_rgb if task == "brain" else (lambda image: image)


def run_images(content: bytes, metadata: dict[str, Any], task: str, images: list) -> dict[str, np.ndarray]:
    """The artifact's outputs for PIL images, prepared as the function prepares them."""
    from oncoserve_runtime import ImagePreprocessing

    from train.core import tflite_outputs

    preprocessing = ImagePreprocessing.from_metadata(metadata["preprocessing"]["in_runtime"])
    transform = serving_transform(task)
    batch = np.concatenate([preprocessing.to_array(transform(image)) for image in images])
    return tflite_outputs(content, batch, per_call=32)


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))], np.r_[in_scores, out_scores]))


def summary(scores: np.ndarray, ood: dict[str, Any], in_scores: np.ndarray | None = None) -> dict[str, Any]:
    refused = ~np.isfinite(scores) | (scores > ood["refuse_threshold"])
    figures = {"n": int(len(scores)), "refused": float(refused.mean()),
               "flagged": float((refused | (scores > ood["atypical_threshold"])).mean()),
               "score_median": float(np.nanmedian(scores))}
    if in_scores is not None:
        figures["auroc"] = auroc(in_scores, np.nan_to_num(scores, nan=np.inf, posinf=1e30))
    return figures


def decisions(task: str, metadata: dict[str, Any], rows, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(truth, the model's decision) for manifest ``rows``, at the shipped thresholds."""
    output = metadata["output"]
    probabilities = outputs[output.get("tensor") or next(k for k in outputs if not k.startswith("ood"))]
    positive = probabilities[:, output["labels"].index(output["positive_label"])]
    if task == "brain":
        threshold = rows["modality"].map(output["thresholds_by_modality"]).to_numpy()
        truth = (rows["label"] != "healthy").to_numpy()
    else:
        threshold = output["threshold"]
        truth = (rows["label"].astype(str) == ("melanoma" if task == "skin" else "1")).to_numpy()
    return truth, positive >= threshold


def evaluate_image_model(task: str, content: bytes, metadata: dict[str, Any], *, seed: int = 0) -> dict[str, Any]:
    """Every figure of ``ood_evaluation.json`` for one image model."""
    from train.core import task_data_dir
    from train.imaging import load_manifest

    ood = metadata["ood"]
    manifest = load_manifest(task)
    test = manifest[manifest["split"] == "test"]
    test = test.iloc[np.sort(np.random.default_rng(seed).permutation(len(test))[:ID_SAMPLE])]
    id_images = [families.decoded(task_data_dir(task) / p) for p in test["path"]]
    id_out = run_images(content, metadata, task, id_images)
    id_scores = id_out["ood_score"]

    def score_images(images: list) -> np.ndarray:
        return run_images(content, metadata, task, images)["ood_score"]

    truth, decided = decisions(task, metadata, test, id_out)
    flagged = id_scores > ood["atypical_threshold"]
    errors = truth != decided
    result: dict[str, Any] = {
        "in_distribution": {**summary(id_scores, ood), "slice": f"test split ({len(test)} images)"},
        "errors_flagged": {"errors": int(errors.sum()), "flagged_share_of_errors": float(flagged[errors].mean()) if errors.any() else None,
                           "flagged_share_of_correct": float(flagged[~errors].mean())},
    }
    if "source_dataset" in test:
        result["in_distribution_by_source"] = {str(s): summary(id_scores[(test["source_dataset"] == s).to_numpy()], ood)
                                               for s in sorted(test["source_dataset"].unique())}
    scores = {f"other_tasks:{other}": score_images([families.decoded(p) for p in families.test_paths(other, OTHER_PER_TASK, seed)])
              for other in families.IMAGE_TASKS if other != task}
    scores["other_tasks"] = np.concatenate(list(scores.values()))
    scores["photographs"] = score_images(families.photographs())
    scores["synthetic"] = score_images(families.synthetic(seed))
    for name, images in families.corrupted(id_images[:CORRUPTED_SAMPLE], seed).items():
        scores[f"corrupted:{name}"] = score_images(images)
    result["families"] = {name: summary(values, ood, id_scores) for name, values in scores.items()}
    result["goals"] = goals(result)
    if ood.get("region"):
        from train.ood.regions import region_tensor

        region_scores = id_out[region_tensor(ood)]
        result["region_route"] = evaluate_region_route(task, content, metadata, test, id_images, region_scores,
                                                       id_scores, seed)
    return result


def evaluate_region_route(task: str, content: bytes, metadata: dict[str, Any], test, id_images: list,
                          id_scores: np.ndarray, tile_scores: np.ndarray, seed: int) -> dict[str, Any]:
    """The far families as a user sends them to a tiled route (whole, at their own size: the patch route
    refuses anything over its side), against test regions: each test patient's n spatially nearest
    tissue patches around each of them, n = 1..the thresholds' largest count (``id_scores``: the test
    images' region scores; ``tile_scores``: their own, for the route's other rule: every tile refused)."""
    from types import SimpleNamespace

    from oncoserve_runtime import ImagePreprocessing

    from train.core.ood import neighbour_region_medians
    from train.histopathology.data import patch_positions
    from train.ood import regions

    ood = metadata["ood"]
    region = SimpleNamespace(**ood["region"])
    preprocessing = ImagePreprocessing.from_metadata(metadata["preprocessing"]["in_runtime"])
    kept = regions.tissue(np.concatenate([preprocessing.to_array(image) for image in id_images]))
    patients, positions = test["patient_id"].to_numpy()[kept], patch_positions(test["path"])[kept]
    refused, flagged, total, refused_by_count = 0, 0, 0, []
    for n in range(1, len(region.refuse_thresholds) + 1):
        medians = neighbour_region_medians(id_scores[kept], patients, positions, n)
        closest_tile = neighbour_region_medians(tile_scores[kept], patients, positions, n, statistic=np.min)
        out = (medians > region.refuse_thresholds[n - 1]) | (closest_tile > ood["refuse_threshold"])
        refused, total = refused + int(out.sum()), total + len(medians)
        flagged += int((out | (medians > region.atypical_thresholds[n - 1])).sum())
        refused_by_count.append(float(out.mean()))
    largest = medians  # the regions of the largest count, the families' reference
    sent = {f"other_tasks:{other}": [families.decoded(p) for p in families.test_paths(other, OTHER_PER_TASK, seed)]
            for other in families.IMAGE_TASKS if other != task}
    sent.update(photographs=families.photographs(), synthetic=families.synthetic(seed))
    figures = {name: regions.region_summary(regions.image_region_scores(content, metadata, images), ood, largest)
               for name, images in sent.items()}
    measured = [f for f in figures.values() if f["auroc"] is not None]
    return {"in_distribution": {"n": total, "refused": refused / total, "flagged": flagged / total,
                                "refused_by_tile_count": refused_by_count, "score_median": float(np.median(largest)),
                                "slice": f"test regions of 1..{len(region.refuse_thresholds)} neighbouring tissue patches "
                                         f"of one patient ({len(np.unique(patients))} patients)"},
            "families": figures,
            "goals": {"far_auroc_min": min((f["auroc"] for f in measured), default=None),
                      "far_refused_min": min(f["refused"] for f in figures.values()),
                      "in_distribution_refused": refused / total,
                      "met": bool(all(f["auroc"] is not None and f["auroc"] >= 0.99 and f["refused"] >= 0.95
                                      for f in figures.values()) and refused / total <= 0.01)}}


def goals(result: dict[str, Any]) -> dict[str, Any]:
    """The issue's goals: far-family AUROC >= 0.99 and refusal >= 95%, <= 1% of test images refused."""
    far = {k: v for k, v in result["families"].items() if k in families.FAR_FAMILIES}
    return {"far_auroc_min": min(v["auroc"] for v in far.values()),
            "far_refused_min": min(v["refused"] for v in far.values()),
            "in_distribution_refused": result["in_distribution"]["refused"],
            "met": bool(all(v["auroc"] >= 0.99 and v["refused"] >= 0.95 for v in far.values())
                        and result["in_distribution"]["refused"] <= 0.01)}


def guard_contract(task: str, content: bytes, density: dict[str, Any], val_scores: np.ndarray, *, features: str,
                   output: dict[str, Any], preprocessing: dict[str, Any], seed: int,
                   region: dict[str, Any] | None = None, blank_images: bool = False) -> dict[str, Any]:
    """model.json's ``ood`` from the shipped artifact's validation scores (``core.ood.contract_block``;
    ``region``: its thresholds for tiled images, ``core.ood.region_block``), measured on the test split
    and the families through that artifact (writes ood_evaluation.json)."""
    from train.core.ood import contract_block

    ood = contract_block(density, val_scores, features=features, region=region, blank_images=blank_images)
    write_evaluation(task, evaluate_image_model(task, content, {"ood": ood, "output": output,
                                                                "preprocessing": preprocessing}, seed=seed))
    return ood


def write_evaluation(task: str, result: dict[str, Any]) -> None:
    from train.core import function_dir, rounded

    path = function_dir(task) / "ood_evaluation.json"
    path.write_text(json.dumps(rounded(result), indent=2) + "\n")
    print(f"wrote {path.relative_to(function_dir(task).parent.parent)}: goals {result['goals']}", flush=True)
