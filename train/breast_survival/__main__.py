"""
Title: Breast-cancer survival from gene expression, with or without clinical variables (METABRIC)
Description: four ordered survival groups from 489 mRNA z-scores — the seed's K-Means clusters and a
    survival-aware Cox risk score cut into quartiles, compared on validation — and, when a request
    brings them, seven clinical variables with expression (the Nottingham index and a clinical Cox
    as anchors); both models answer with a risk score and the patient's own survival curves, served
    as one TFLite graph with per-group Kaplan–Meier tables in its metadata.
Accelerator: none (about seven minutes on 2 CPU cores)

## Introduction

The seed clusters METABRIC expression profiles with K-Means (k=4), runs survival analysis per
cluster and names the clusters by their survival. Clusters found without looking at survival need
not separate it; a Cox model on the same genes does look at survival. Both are fitted on training
patients only, compared on validation (Harrell's C of the group rank, overall and disease-specific),
and the better one ships; the other stays runnable (``--method``). Expression alone reaches a C of
about 0.6; the prognostic tools clinicians use (NPI, PREDICT) are built on clinical variables, so a
second model adds them (``prognosis_candidates.py``), chosen the same way.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from train import core
from train.breast_survival.card import write_card, write_plots
from train.breast_survival.clinical import check_imputation_bound
from train.breast_survival.contract import contract_input, contract_output, contract_preprocessing, survival_tables
from train.breast_survival.data import SPLIT_SEED, TASK, load_metabric
from train.breast_survival.evaluate import (candidate_rows, cross_validated_separation, external_checks, flat_metrics,
                                            rate_candidates, selection_score, separation)
from train.ood.evaluate import write_evaluation
from train.ood.expression import evaluate_expression_model
from train.breast_survival.graph import build_serving_model, serving_rows
from train.breast_survival.model import candidates
from train.breast_survival.prognosis import ExpressionCurves
from train.breast_survival.prognosis_stage import choose_prognosis_model, clinical_metrics, shipped_test_figures

REFIT_RULE = ("validation chooses the fitting procedure, and the shipped model is that procedure run on training + "
              "validation patients, as decided before any refitted model's test figures were seen (--no-refit ships "
              "the training-only fit)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the breast-cancer survival-group model.")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--method", choices=("kmeans", "cox"), help="only this family (default: compare both)")
    parser.add_argument("--no-refit", action="store_true",
                        help="ship the chosen candidate as fitted on training patients (default: refit on train+val)")
    parser.add_argument("--card-only", action="store_true", help="re-render MODEL_CARD.md from model.json")
    args = core.parse_shipped_args(parser, TASK, argv)
    if args.card_only:
        return write_card(core.read_model_json(TASK))
    started = time.time()
    core.seed_everything(args.seed)

    # ## Data: a seeded hash of the patient id splits 60/20/20
    data = load_metabric()
    check_imputation_bound(data.clinical)
    train, val, test = data.subset("train"), data.subset("val"), data.subset("test")
    print(f"patients: train {len(train.months)}, val {len(val.months)}, test {len(test.months)}; "
          f"{len(data.genes)} genes", flush=True)

    # ## Candidates fitted on training patients, chosen on validation
    results = rate_candidates(candidates(args.seed, args.method), train, val)
    chosen_fit, chosen, chosen_val = max(results, key=lambda triple: selection_score(triple[2]))
    print(f"chosen on validation: {chosen.method} {chosen.params}", flush=True)
    cross_validated = cross_validated_separation(chosen_fit, data.subset("train", "val"), args.seed)
    print("cross-validated on train+val: " + ", ".join(
        f"C {endpoint} {cross_validated[f'harrell_c_{endpoint}']['mean']:.3f} ± {cross_validated[f'harrell_c_{endpoint}']['sd']:.3f}"
        for endpoint in ("overall", "disease_specific")), flush=True)
    # Validation has done its job (choosing the procedure); the shipped model is that procedure run
    # again on training + validation patients. Test stays untouched either way.
    fitted = train if args.no_refit else data.subset("train", "val")
    best = chosen if args.no_refit else chosen_fit(fitted)
    if not args.no_refit:
        print(f"refitted on train+val ({len(fitted.months)} patients): {best.params}", flush=True)

    curves = ExpressionCurves.fit(best, fitted)

    # ## Clinical + expression: candidates on training patients, chosen on validation, fitted again the same way
    prognosis = choose_prognosis_model(args.seed, chosen_fit if chosen.method == "cox" else None, train, val, fitted,
                                       test, refit=not args.no_refit)

    # ## Convert (float32) and evaluate the artifact on test
    # The density refuses a profile on another scale; the cosine to the nearest training profile (all 489
    # directions) one whose values sit in the wrong genes, which the density takes for an unusual patient (card).
    patients = np.full(len(train.months), "patients")
    density = core.ood.fit_either_of([core.ood.fit_feature_density(train.expression, patients),
                                      core.ood.fit_nearest_neighbour(train.expression, patients,
                                                                     components=len(data.genes))], val.expression)
    keras_model = build_serving_model(best, curves, prognosis.shipped, len(data.genes), density)
    core.export_saved_model(keras_model, TASK)  # for `make bench` (TensorFlow and ONNX Runtime baselines)
    converted = core.convert_float32(TASK, keras_model, serving_rows(data, prognosis.shipped.fill_values))
    outputs = {name: core.tflite_outputs(converted.content, serving_rows(split, prognosis.shipped.fill_values))
               for name, split in (("fitted", fitted), ("test", test))}
    groups = {name: out["membership"].argmax(axis=1) for name, out in outputs.items()}
    print(f"group agreement with NumPy on test {float((groups['test'] == best.groups(test.expression)).mean()):.4f}",
          flush=True)
    metrics = {"val": chosen_val, "test": separation(test, groups["test"])}
    clinical_test = shipped_test_figures(test, outputs["test"]["clinical_risk"][:, 0],
                                         outputs["test"]["clinical_membership"].argmax(axis=1))
    print_test_figures(metrics["test"], clinical_test)

    # ## The out-of-distribution guard: thresholds on validation patients, figures on test
    def ood_scores(profiles: np.ndarray) -> np.ndarray:
        rows = np.column_stack([profiles, np.tile(prognosis.shipped.fill_values, (len(profiles), 1))]).astype(np.float32)
        return core.tflite_outputs(converted.content, rows)["ood_score"]

    ood = core.ood.contract_block(density, ood_scores(val.expression), features="the gene z-scores as sent")
    write_evaluation(TASK, evaluate_expression_model(TASK, ood_scores, test.expression, ood, seed=args.seed,
                                                     id_slice=f"test patients ({len(test.months)})"))

    # ## model.json, training.json, plots and the card
    fitted_on = "training patients" if args.no_refit else "training + validation patients"
    tables = survival_tables(fitted, groups["fitted"])
    clinical_tables = survival_tables(fitted, outputs["fitted"]["clinical_membership"].argmax(axis=1))
    plots = write_plots(test, groups["test"], fitted, groups["fitted"], fitted_on, prognosis.test["calibration"])
    external = external_checks(args.seed)
    training = {"seed": args.seed, "method": best.method, "params": best.params, "candidates": candidate_rows(results),
                "chosen_on_validation": {"method": chosen.method, "params": chosen.params},
                "cross_validated": {"patients": "training + validation", **cross_validated},
                "fitted_on": {"patients": fitted_on, "n": len(fitted.months), "rule": REFIT_RULE},
                "clinical": {"candidates": prognosis.validation, "chosen_on_validation": prognosis.chosen_key,
                             "beats_both_anchors_on_validation": prognosis.beats_anchors,
                             "shipped": {"params": prognosis.shipped.params}},
                "split": {"rule": f"sha256('{SPLIT_SEED}-<patient_id>') → 60/20/20",
                          "counts": {"train": len(train.months), "val": len(val.months), "test": len(test.months)}},
                "command": "python -m train.breast_survival --no-refit" if args.no_refit else "make train-breast-survival",
                "seconds": round(time.time() - started, 1)}
    metadata = core.model_metadata(
        core.Release.load(TASK), vars(args), artifact=core.artifact_entry(converted),
        input=contract_input(data.genes, best, prognosis.shipped), preprocessing=contract_preprocessing(best), ood=ood,
        output=contract_output(best, tables, fitted_on, prognosis, clinical_tables), training=training,
        metrics={**split_metrics(metrics, external), **clinical_metrics(prognosis, clinical_test)},
        data={"splits": training["split"]["counts"]}, plots=plots)
    write_card(core.write_model_json(TASK, metadata))
    print(f"done in {time.time() - started:.0f} s", flush=True)


def print_test_figures(expression_only: dict[str, Any], clinical: dict[str, Any]) -> None:
    for endpoint in ("overall", "disease_specific"):
        m = expression_only[endpoint]
        print(f"test {endpoint}: C {m['harrell_c']:.3f}, log-rank p {m['logrank_p']:.1e}, "
              f"trend p {m['logrank_trend_p']:.1e}, groups {m['per_group']}", flush=True)
    print(f"clinical + expression on test: C overall {clinical['harrell_c']['overall']:.3f}, "
          f"disease-specific {clinical['harrell_c']['disease_specific']:.3f}", flush=True)


def split_metrics(metrics: dict[str, Any], external: dict[str, Any]) -> dict[str, Any]:
    """model.json's ``metrics``: validation (the training-only fit that chose), test, and the external method check."""
    return {"val": flat_metrics(metrics["val"], "validation patients: the chosen candidate fitted on training "
                                                "patients only (model selection)"),
            "test": flat_metrics(metrics["test"], "test patients, never used for selection"),
            **({"external": {"slice": "method check on independent sets (refitted within each)", **external}}
               if external else {})}


if __name__ == "__main__":
    main()
