"""How a prognosis model is judged: Harrell's C of its continuous risk per endpoint (validation to
choose, test to report), paired bootstrap intervals of its lead over the anchors, and the calibration
of its 5- and 10-year survival against Kaplan–Meier by risk decile."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from train.breast_survival.data import Metabric
from train.breast_survival.prognosis import CURVE_MONTHS, ENDPOINTS, RiskModel

LANDMARKS = {"five_year": 60.0, "ten_year": 120.0}
BOOTSTRAP_RESAMPLES = 1000


def harrell(data: Metabric, risk: np.ndarray) -> dict[str, float]:
    from lifelines.utils import concordance_index

    return {e: float(concordance_index(data.months, -risk, data.events(e))) for e in ENDPOINTS}


def selection_score(c: dict[str, float]) -> float:
    return (c["overall"] + c["disease_specific"]) / 2


def rate_prognosis_candidates(fits: list[Callable[[Metabric], RiskModel]], train: Metabric,
                              val: Metabric) -> list[tuple]:
    """(fit, model fitted on ``train``, its validation C per endpoint) for every candidate procedure."""
    results = []
    for fit in fits:
        model = fit(train)
        c = harrell(val, model.risk(val))
        results.append((fit, model, c))
        print(f"  {model.name:30s} {model.params} → val C overall {c['overall']:.3f}, "
              f"disease-specific {c['disease_specific']:.3f}", flush=True)
    return results


def paired_bootstrap(test: Metabric, risks: dict[str, np.ndarray], shipped: str, seed: int) -> dict[str, Any]:
    """The shipped model's C minus each other model's, on the same resampled test patients: 95% percentile
    interval over BOOTSTRAP_RESAMPLES resamples."""
    from lifelines.utils import concordance_index

    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(test.months), len(test.months)) for _ in range(BOOTSTRAP_RESAMPLES)]

    def c_per_draw(risk: np.ndarray, events: np.ndarray) -> np.ndarray:
        return np.array([concordance_index(test.months[d], -risk[d], events[d]) for d in draws])

    differences: dict[str, Any] = {name: {} for name in risks if name != shipped}
    for endpoint in ENDPOINTS:
        events = test.events(endpoint)
        shipped_draws = c_per_draw(risks[shipped], events)
        shipped_c = concordance_index(test.months, -risks[shipped], events)
        for other in differences:
            deltas = shipped_draws - c_per_draw(risks[other], events)
            point = shipped_c - concordance_index(test.months, -risks[other], events)
            differences[other][endpoint] = {"difference": float(point),
                                            "ci95": [float(np.percentile(deltas, 2.5)), float(np.percentile(deltas, 97.5))]}
    return {"resamples": BOOTSTRAP_RESAMPLES, "shipped": shipped, "vs": differences}


def calibration_by_decile(test: Metabric, model: RiskModel, risk: np.ndarray) -> dict[str, Any]:
    """Per endpoint and landmark: each risk decile's (``risk``: the model's on ``test``) mean predicted survival
    and its Kaplan–Meier survival."""
    from lifelines import KaplanMeierFitter

    curves = model.survival(risk)
    deciles = np.array_split(np.argsort(risk), 10)
    table: dict[str, Any] = {}
    for e, endpoint in enumerate(ENDPOINTS):
        events = test.events(endpoint)
        for landmark, months in LANDMARKS.items():
            column = int(np.searchsorted(CURVE_MONTHS, months))
            rows = [{"decile": k + 1, "n": int(len(rows)),
                     "predicted": float(curves[rows, e, column].mean()),
                     "observed": float(KaplanMeierFitter().fit(test.months[rows], events[rows])
                                       .survival_function_at_times([months]).iloc[0])}
                    for k, rows in enumerate(deciles)]
            gaps = [abs(r["predicted"] - r["observed"]) for r in rows]
            table[f"{endpoint}_{landmark}"] = {"deciles": rows, "mean_absolute_gap": float(np.mean(gaps))}
    return table
