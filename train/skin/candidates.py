"""
## Candidates, rated by the mean of the per-source validation AUCs

Colour constancy is chosen on frozen features (cheap); with ``--fine-tune-epochs`` the chosen
extractor's last stage is also tuned and competes on validation like any other candidate, as do a
second tuned backbone (``--second-weights``) and every layer tuned (``--full-fine-tune-epochs``).
Mirrored training images are the augmentation: dermoscopy has no left or right.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from train import core, imaging
from train.skin.data import TASK, load_data

ENSEMBLE_MARGIN = 0.005  # validation mean AUC a two-backbone candidate must add to pay for 2× the compute
ENSEMBLE_RULE = (f"the two-backbone candidate (2× the compute per image) ships only if its validation mean AUC beats the "
                 f"best single backbone's by at least {ENSEMBLE_MARGIN}.")
SYMMETRIC_VIEWS_TEXT = ("per-cell logits averaged over the image's 8 flips and 90° rotations, each view turned back "
                        "first (the linear head on the averaged features)")


def feature_cache_tag(args: argparse.Namespace, weights: str | None, constancy: bool) -> str:
    """Names the cached features and maps of one backbone, weights file, colour-constancy setting and
    input size (the backbone's own size keeps the names the caches had before sizes could change)."""
    size = "" if args.input_size == imaging.BACKBONES[args.backbone].input_size else f"_px{args.input_size}"
    return f"{imaging.cache_tag(args.backbone, weights)}{'_sog' if constancy else ''}{size}"


def tune_last_stage(args: argparse.Namespace, weights: str | None, constancy: bool, images: np.ndarray, y: np.ndarray,
                    split: np.ndarray, model_name: str | None = None) -> tuple[Any, imaging.TunedFeatures]:
    """A fresh extractor of ``weights`` (fine-tuning changes its layers in place, the frozen candidates
    keep their own) with its last stage tuned on mirrored and flipped training images."""
    extractor = imaging.build_feature_extractor(args.backbone, weights, colour_constancy=constancy,
                                                 input_size=args.input_size, model_name=model_name)
    tuned = imaging.fine_tune_last_stage(TASK, feature_cache_tag(args, weights, constancy), extractor, args.backbone, images, split, {"melanoma": y},
                                          augmentations=imaging.MIRRORED_AND_FLIPPED, learning_rate=args.learning_rate,
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

    best = imaging.select_linear_head(
        np.concatenate([features[train], *augmented_train]), np.concatenate([y[train]] * (1 + len(augmented_train))),
        2, val=(features[val], y[val]), score=lambda p: mean_val_auc(p[:, 1], y, source, split),
        seed=seed, name="melanoma")
    return {**best, "per_source": val_auc_per_source(best["val_probabilities"][:, 1], y, source, split)}


def val_auc_per_source(p_val: np.ndarray, y: np.ndarray, source: np.ndarray, split: np.ndarray) -> dict[str, float]:
    val = split == "val"
    return core.auc_by_group(y[val], p_val, source[val])


def mean_val_auc(p_val: np.ndarray, y: np.ndarray, source: np.ndarray, split: np.ndarray) -> float:
    """How every skin candidate is rated: the mean of the per-source validation AUCs (it must hold up on both)."""
    return core.mean_auc_by_group(y[split == "val"], p_val, source[split == "val"])


def frozen_candidate(args: argparse.Namespace, constancy: bool, images: np.ndarray, y: np.ndarray, source: np.ndarray,
                     split: np.ndarray) -> dict[str, Any]:
    """The frozen ``args.weights`` backbone at ``args.input_size``: pooled features (cached; mirrored
    training images as augmentation, dermoscopy has no left or right) under a linear head."""
    tag = feature_cache_tag(args, args.weights, constancy)
    extractor = imaging.build_feature_extractor(args.backbone, args.weights, colour_constancy=constancy,
                                                 input_size=args.input_size)
    features = imaging.pooled_features(TASK, tag, extractor, images)
    flipped = imaging.pooled_features(TASK, tag + "_flip_train", extractor, images[split == "train"][:, :, ::-1])
    return {**fit_head(features, [flipped], y, source, split, args.seed), "features": features, "extractor": extractor}


def screen_input_sizes(args: argparse.Namespace) -> None:
    """The cheap first look at a larger input: frozen features of the given weights with colour
    constancy and a linear head, one view, validation only (measurements.yaml's input_size_screen keeps the result)."""
    for size in args.screen_input_sizes:
        args.input_size = size
        data = load_data(size)
        rated = frozen_candidate(args, True, data["images"], data["y"], data["source"], data["split"])
        print(f"input {size} px: validation mean AUC {rated['score']:.4f}, per source "
              f"{ {k: round(v, 4) for k, v in rated['per_source'].items()} }", flush=True)


def print_candidates(results: dict[str, dict[str, Any]], seconds: float) -> None:
    """``--screen-candidates``: every candidate's validation figures (one view), as measurements.yaml keeps them."""
    for key, row in candidate_table(results).items():
        print(f"{key}: validation mean AUC {row['val_auc_mean']:.4f}, per source "
              f"{ {k[len('val_auc_'):]: round(v, 4) for k, v in row.items() if k.startswith('val_auc_') and k != 'val_auc_mean'} }",
              flush=True)
    print(f"screened in {seconds / 60:.0f} min", flush=True)


def chosen_views(views: dict[str, float]) -> str:
    """"8" when averaging over the 8 symmetric views beats the image as given on validation, else "1"."""
    return "8" if views["8"] > views["1"] else "1"


def train_candidates(args: argparse.Namespace, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every candidate the options ask for, by name: its head, validation score, extractor and record."""
    images, y, source, split = (data[k] for k in ("images", "y", "source", "split"))
    results = {}
    for constancy in (False, True):
        results[f"colour_constancy={constancy}"] = {
            **frozen_candidate(args, constancy, images, y, source, split), "constancy": constancy,
            "augmentation": "horizontal flips of training images, in feature space"}
    frozen = results[max(results, key=lambda key: results[key]["score"])]
    if args.fine_tune_epochs:
        results.update(last_stage_candidates(args, data, frozen["constancy"]))
    if args.full_fine_tune_epochs:
        results[f"colour_constancy={frozen['constancy']}, all layers tuned"] = all_layers_candidate(
            args, data, frozen["constancy"])
    return results


def last_stage_candidates(args: argparse.Namespace, data: dict[str, Any], constancy: bool) -> dict[str, dict[str, Any]]:
    """The frozen winner's extractor with its last stage tuned; with ``--second-weights``, also both
    tuned backbones' features concatenated under one linear head."""
    images, y, source, split = (data[k] for k in ("images", "y", "source", "split"))
    extractor, tuned = tune_last_stage(args, args.weights, constancy, images, y, split)
    augmentation = f"{tuned.summary['augmentation']} (maps for fine-tuning, pooled features for the head)"
    results = {f"colour_constancy={constancy}, last stage tuned": {
        **fit_head(tuned.pooled, list(tuned.augmented_train.values()), y, source, split, args.seed),
        "features": tuned.pooled, "extractor": extractor, "constancy": constancy, "fine_tuning": tuned.summary, "augmentation": augmentation}}
    if args.second_weights:
        # The same recipe on a backbone tuned from another seed; one linear head over both feature sets.
        second_extractor, second = tune_last_stage(args, args.second_weights, constancy, images, y, split,
                                                   model_name=f"{args.backbone}_second_features")
        both = {name: np.concatenate([tuned.augmented_train[name], second.augmented_train[name]], axis=1)
                for name in tuned.augmented_train}
        pooled = np.concatenate([tuned.pooled, second.pooled], axis=1)
        results[f"colour_constancy={constancy}, last stage tuned, two backbones"] = {
            **fit_head(pooled, list(both.values()), y, source, split, args.seed), "features": pooled,
            "extractor": imaging.concatenated_extractor([extractor, second_extractor]),
            "constancy": constancy, "fine_tuning": tuned.summary, "backbones": 2, "augmentation": augmentation}
    return results


def all_layers_candidate(args: argparse.Namespace, data: dict[str, Any], constancy: bool) -> dict[str, Any]:
    """Every backbone layer tuned on augmented images in this run, then a linear head on its features."""
    images, y, source, split = (data[k] for k in ("images", "y", "source", "split"))
    extractor = imaging.build_feature_extractor(args.backbone, args.weights, colour_constancy=constancy,
                                                input_size=args.input_size)
    whole = imaging.fine_tune_whole_backbone(
        extractor, images, {"melanoma": y}, split,
        score=lambda outputs: mean_val_auc(outputs["melanoma"][:, 1], y, source, split),
        augmentation=imaging.dermoscopy_augmentation(args.seed), learning_rate=2e-5,
        epochs=args.full_fine_tune_epochs, seed=args.seed)
    pooled = imaging.pooled_outputs(extractor, images)  # not cached: these weights exist only in this run
    mirrored = imaging.pooled_outputs(extractor, images[split == "train"][:, :, ::-1])
    return {**fit_head(pooled, [mirrored], y, source, split, args.seed), "features": pooled, "extractor": extractor,
            "constancy": constancy, "fine_tuning": whole, "every_layer_tuned": True,
            "augmentation": f"{whole['augmentation']} for tuning; horizontal flips for the head"}


def guard_features(args: argparse.Namespace, chosen: dict[str, Any], data: dict[str, Any]) -> tuple[np.ndarray, str | None]:
    """(training features of the out-of-distribution score, the backbone layer they are pooled from; None:
    the last map). The layer lies below the last stage, so a frozen and a last-stage-tuned candidate
    share its cached features; two concatenated backbones have no one layer and keep the last map."""
    train_images = data["images"][data["split"] == "train"]
    layer = imaging.BACKBONES[args.backbone].ood_layer
    if layer is None or chosen.get("backbones", 1) > 1:
        return chosen["features"][data["split"] == "train"], None
    if chosen.get("every_layer_tuned"):  # these weights exist only in this run
        return imaging.pooled_outputs(imaging.tap_only(chosen["extractor"], layer), train_images), layer
    tag = feature_cache_tag(args, args.weights, chosen["constancy"])
    return imaging.guard_training_features(TASK, tag, chosen["extractor"], layer, train_images), layer


def fine_tuning_record(results: dict[str, dict[str, Any]], choice: str) -> dict[str, Any]:
    """training.json keeps the chosen tuning run, else the first one that lost, else says none ran."""
    tuning_runs = [key for key in results if "fine_tuning" in results[key]]
    shown = choice if choice in tuning_runs else next(iter(tuning_runs), None)
    return {**results[shown]["fine_tuning"], "chosen": shown == choice} if shown else {"run": False}


def candidate_table(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """training.json's ``candidates``: each one's validation mean AUC, L2 and per-source AUCs."""
    return {key: {"val_auc_mean": r["score"], "l2": r["l2"], **{f"val_auc_{s}": a for s, a in r["per_source"].items()}}
            for key, r in results.items()}


def with_views(chosen: dict[str, Any], data: dict[str, Any], density: dict[str, Any], ood_layer: str | None):
    """(serving model, validation mean AUC per view count, whether 8 views ship). Dermoscopy has no up
    or left: averaging the features over the image's 8 flips and rotations competes on validation
    like every other choice (it costs 8× the compute per image). ``density``: the out-of-distribution
    score's constants (``core.ood``), on the features of ``ood_layer`` the served views average."""
    y, source, split = data["y"], data["source"], data["split"]
    heads = {"melanoma": {"dense": chosen["dense"], "cam_class": 1}}
    symmetric = imaging.build_cam_model(chosen["extractor"], heads, symmetric_views=True, ood=density,
                                       ood_layer=ood_layer)
    p_symmetric = symmetric.predict(data["images"][split == "val"].astype(np.float32), batch_size=8,
                                    verbose=0)["melanoma"][:, 1]
    views = {"1": chosen["score"], "8": mean_val_auc(p_symmetric, y, source, split)}
    symmetric_views = chosen_views(views) == "8"
    print(f"validation mean AUC, 1 view {views['1']:.4f}, 8 symmetric views {views['8']:.4f}", flush=True)
    model = symmetric if symmetric_views else imaging.build_cam_model(
        chosen["extractor"], heads, ood=density, ood_layer=ood_layer)
    return model, views, symmetric_views
