"""The clinical + expression stage of the training script: candidates fitted on training patients and
chosen on validation (the shipped one must beat both anchors there), the chosen procedure fitted
again like the expression model, and every candidate reported on test side by side."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from train.breast_survival.data import Metabric
from train.breast_survival.evaluate import flat_metrics, separation
from train.breast_survival.model import GroupModel
from train.breast_survival.prognosis import RiskModel
from train.breast_survival.prognosis_candidates import ANCHORS, prognosis_candidates
from train.breast_survival.prognosis_evaluate import (calibration_by_decile, harrell, paired_bootstrap,
                                                      rate_prognosis_candidates, selection_score)

GOALS = {"harrell_c_overall": 0.70, "harrell_c_disease_specific": 0.75}  # issue 30, on test


def candidate_key(model: RiskModel) -> str:
    return "-".join([model.name, *(str(model.params[k]) for k in ("endpoint", "l1_ratio") if k in model.params)])


@dataclass
class PrognosisChoice:
    shipped: RiskModel
    chosen_key: str
    validation: list[dict[str, Any]]  # every candidate's validation C (fitted on training patients)
    anchors: dict[str, str]  # anchor kind → the candidate of that kind validation rates best
    beats_anchors: bool
    test: dict[str, Any]  # every candidate refitted like the shipped one, on test; differences; calibration


def choose_prognosis_model(seed: int, expression_fit: Callable[[Metabric], GroupModel] | None, train: Metabric,
                           val: Metabric, fitted: Metabric, test: Metabric, refit: bool) -> PrognosisChoice:
    fits = prognosis_candidates(seed, expression_fit)
    results = rate_prognosis_candidates(fits, train, val)
    validation = [{"candidate": candidate_key(m), "params": m.params, "val_c_overall": c["overall"],
                   "val_c_disease_specific": c["disease_specific"]} for _, m, c in results]
    chosen = max(range(len(results)), key=lambda i: selection_score(results[i][2]))
    best, best_c = results[chosen][1], results[chosen][2]
    # the clinical Cox has one candidate per endpoint: the anchor is the one validation rates best
    anchors = {kind: max((r for r in results if r[1].name == kind), key=lambda r: selection_score(r[2]))
               for kind in ANCHORS}
    beats = all(selection_score(best_c) > selection_score(c) for _, _, c in anchors.values())
    print(f"chosen on validation: {candidate_key(best)} (beats both anchors: {beats})", flush=True)
    # every candidate fitted again like the shipped one, so the test table compares like with like
    refitted = [fit(fitted) if refit else model for fit, model, _ in results]
    shipped = refitted[chosen]
    return PrognosisChoice(shipped, candidate_key(best), validation,
                           {kind: candidate_key(model) for kind, (_, model, _) in anchors.items()}, beats,
                           test_comparison(refitted, shipped, test, seed))


def test_comparison(models: list[RiskModel], shipped: RiskModel, test: Metabric, seed: int) -> dict[str, Any]:
    """Each candidate's test C, the shipped model's lead over each other one (bootstrap intervals), and
    the shipped model's calibration."""
    risks = {candidate_key(m): m.risk(test) for m in models}
    rows = [{"candidate": key, **{f"test_c_{e}": c for e, c in harrell(test, risk).items()}}
            for key, risk in risks.items()]
    for row in rows:
        print(f"  test {row['candidate']:40s} C overall {row['test_c_overall']:.3f}, "
              f"disease-specific {row['test_c_disease_specific']:.3f}", flush=True)
    return {"candidates": rows, "bootstrap": paired_bootstrap(test, risks, candidate_key(shipped), seed),
            "calibration": calibration_by_decile(test, shipped, risks[candidate_key(shipped)])}


def shipped_test_figures(test: Metabric, risk: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """The shipped artifact's own figures on test: C of its continuous risk and of its four groups."""
    return {"n": int(len(test.months)), "harrell_c": harrell(test, risk), "groups": separation(test, groups)}


def clinical_metrics(prognosis: PrognosisChoice, shipped_test: dict[str, Any]) -> dict[str, Any]:
    """model.json's metrics of the clinical + expression model: validation (choice) and test (report)."""
    anchors = prognosis.anchors
    lead = prognosis.test["bootstrap"]["vs"]
    return {
        "val_clinical": {"slice": "validation patients: every clinical candidate fitted on training patients "
                                  "(model selection)", "chosen": prognosis.chosen_key,
                         "beats_both_anchors": prognosis.beats_anchors, "anchors": anchors,
                         "candidates": prognosis.validation},
        "test_clinical": {
            "slice": "test patients, never used for selection; every candidate fitted like the shipped model",
            "n": shipped_test["n"], "shipped": prognosis.chosen_key,
            "harrell_c_overall": shipped_test["harrell_c"]["overall"],
            "harrell_c_disease_specific": shipped_test["harrell_c"]["disease_specific"],
            "goals": GOALS, "groups": flat_metrics(shipped_test["groups"], "the four groups of the clinical model"),
            "candidates": prognosis.test["candidates"],
            "lead_over_anchors": {key: lead[key] for key in anchors.values()},
            "lead_over_candidates": lead, "bootstrap_resamples": prognosis.test["bootstrap"]["resamples"],
            "calibration": prognosis.test["calibration"]},
    }
