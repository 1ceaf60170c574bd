"""
## Leave one MRI source out

What an unseen hospital's MRI would get: for each MRI source, heads fitted on every other image
(CT and the other MRI sources), the MRI threshold chosen on their validation images by the shipped
rule, then the held-out source scored. Two backbones:

- ImageNet's, frozen (``python -m train.brain`` computes it, into model.json): nothing has seen the
  held-out source, but nothing is tuned either;
- the shipped recipe's: the backbone tuned end to end as ``train.brain.tuning`` does, without the
  held-out source (``python -m train.brain.sources``, ≈ 15 min per source on 2 CPU cores → the
  card's ``leave_one_source_out.json``). The shipped backbone itself saw every source and would
  flatter the held-out one.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from train import core, imaging
from train.brain.data import TASK, mri_sources
from train.brain.heads import feature_cache_tag, fit_heads

OUT = core.function_dir(TASK) / "leave_one_source_out.json"
COMMAND = "python -m train.brain.sources"


def leave_one_source_out(data: dict[str, Any], backbone: str, seed: int) -> dict[str, Any]:
    """Per held-out MRI source, with the frozen ImageNet backbone: recall, specificity, AUC and type
    accuracy on its test split and on all its images (none of them fitted or thresholded on)."""
    features = source_features(data, backbone, None)
    result = {"backbone": f"{backbone}, ImageNet weights, frozen", "rule": "heads and threshold fitted without the held-out source"}
    for held_out in mri_sources(data):
        result[held_out] = held_out_scores(data, features, held_out, seed)
    return result


def source_features(data: dict[str, Any], backbone: str, weights: str | None) -> np.ndarray:
    extractor = imaging.build_feature_extractor(backbone, weights)
    tag = feature_cache_tag(backbone, weights, np.unique(data["source"]).tolist())
    return imaging.pooled_features(TASK, tag, extractor, data["images"])


def without(data: dict[str, Any], held_out: str) -> np.ndarray:
    """The split with the held-out source's MRI rows set aside (split "held_out": never fitted on)."""
    held = (data["modality"] == 1) & (data["source"] == held_out)
    return np.where(held, "held_out", data["split"])


def held_out_scores(data: dict[str, Any], features: np.ndarray, held_out: str, seed: int) -> dict[str, Any]:
    """Heads fitted and the MRI threshold chosen (recall >= the target within every other MRI source)
    without ``held_out``; its test split and all its images scored."""
    from train.brain.evaluate import VAL_RECALL_TARGET, tumour_and_type_figures

    split = without(data, held_out)
    heads, _ = fit_heads(features, {**data, "split": split}, seed)
    tumour, tumour_type = (imaging.head_probabilities(heads[name]["dense"], features) for name in ("tumor", "tumor_type"))
    val_mri = (data["modality"] == 1) & (split == "val")
    threshold = core.choose_threshold_within_every_group(data["tumor"][val_mri], tumour[val_mri, 1], data["source"][val_mri],
                                                         min_sensitivity=VAL_RECALL_TARGET, group_name="MRI source")
    held = split == "held_out"
    scores = {}
    for scope, rows in (("test", held & (data["split"] == "test")), ("all", held)):
        figures = tumour_and_type_figures(data["tumor"][rows], tumour[rows, 1], data["type"][rows], tumour_type[rows],
                                          threshold["threshold"])
        scores[scope] = {key: figures[key] for key in ("n", "threshold", "recall", "specificity", "roc_auc",
                                                        "type_accuracy", "type_n", "confusion")}
    print(f"leave out {held_out}: {scores['test']}", flush=True)
    return scores


"""
## With the shipped recipe: a backbone tuned without each source
"""


def tuned_leave_one_source_out(backbone: str, seed: int) -> dict[str, Any]:
    """For each MRI source: tune the backbone as ``train.finetune run brain`` does on everything else
    (kept under build/brain/loso_<source>/; reused only when it was tuned with today's recipe), then
    score the held-out source."""
    from train import finetune
    from train.brain.data import load_data
    from train.brain.tuning import SPEC, arrays

    data = load_data(backbone, core.Release.load(TASK).options.get("sources"))
    tuning_arrays = arrays(backbone)
    recipe = {"epochs": SPEC.epochs, "learning_rate": SPEC.learning_rates[0], "seed": SPEC.seed,
              "augmentation": imaging.augmentation_text(SPEC.augmentation(SPEC.seed))}
    result = {"backbone": f"{backbone} tuned end to end without the held-out source ({recipe['epochs']} epochs, "
                          f"learning rate {recipe['learning_rate']:g}, seed {recipe['seed']}; the shipped augmentation)",
              "rule": "backbone, heads and threshold fitted without the held-out MRI source", "command": COMMAND,
              "recipe": recipe}
    for held_out in mri_sources(data):
        out = core.build_dir(TASK) / f"loso_{held_out}"
        if tuned_with(out) != recipe:
            finetune.run(TASK, {**tuning_arrays, "split": without(data, held_out)}, backbone=backbone, weights=None,
                         learning_rates=[recipe["learning_rate"]], epochs=recipe["epochs"], batch_size=SPEC.batch_size,
                         out=out, seed=SPEC.seed)
        summary = json.loads((out / imaging.SUMMARY_FILE).read_text())
        weights = str(out / imaging.WEIGHTS_FILE)
        scores = held_out_scores(data, source_features(data, backbone, weights), held_out, seed)
        result[held_out] = {**scores, "tuning_val_score": max(summary["val_score"]),
                            "tuning_seconds": summary["seconds"], "weights_sha256": summary["weights_sha256"]}
    return result


def tuned_with(out) -> dict[str, Any] | None:
    """The recipe a kept tuning run in ``out`` used (None when there is none)."""
    path = out / imaging.SUMMARY_FILE
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    return {"epochs": summary["epochs_run"], "learning_rate": summary["chosen_learning_rate"], "seed": summary["seed"],
            "augmentation": summary["augmentation"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Leave one MRI source out with the shipped tuning recipe → "
                                                 f"{OUT.relative_to(core.REPO_ROOT)}")
    parser.add_argument("--backbone", default="mobilenet_v2", choices=sorted(imaging.BACKBONES))
    parser.add_argument("--seed", type=int, default=2024, help="of the heads (the tuning uses the task's own)")
    args = parser.parse_args(argv)
    core.seed_everything(args.seed)
    OUT.write_text(json.dumps(tuned_leave_one_source_out(args.backbone, args.seed), indent=1) + "\n")
    print(f"→ {OUT}", flush=True)


if __name__ == "__main__":
    main()
