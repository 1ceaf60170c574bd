"""How a group model is judged: Harrell's C of the group rank and log-rank tests, per endpoint, on
validation (to choose), in cross-validation (the spread to expect) and on test (to report)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from train.breast_survival.data import Metabric
from train.breast_survival.model import GroupModel, fit_cox, fit_kmeans
from train.breast_survival.survival_stats import group_separation


def separation(data: Metabric, groups: np.ndarray) -> dict[str, Any]:
    return {endpoint: group_separation(data.months, data.events(endpoint), groups)
            for endpoint in ("overall", "disease_specific")}


def cross_validated_separation(fit: Callable[[Metabric], GroupModel], data: Metabric, seed: int, folds: int = 5,
                               repeats: int = 2) -> dict[str, Any]:
    """The spread to expect on ~300 unseen patients: the procedure refitted on k-1 folds of ``data`` and its
    four groups judged on the held-out fold (Harrell's C of the group rank), over repeated stratified k-fold
    splits. Optimistic by the selection: validation, which chose the procedure, is among the folds."""
    from sklearn.model_selection import StratifiedKFold

    strata = 2 * data.dss_event + data.os_event  # alive / other-cause death / breast-cancer death
    c = {"overall": [], "disease_specific": []}
    for repeat in range(repeats):
        for fit_rows, held_rows in StratifiedKFold(folds, shuffle=True, random_state=seed + repeat).split(
                data.expression, strata):
            held = data.rows(held_rows)
            result = separation(held, fit(data.rows(fit_rows)).groups(held.expression))
            for endpoint in c:
                c[endpoint].append(result[endpoint]["harrell_c"])
    return {"folds": folds, "repeats": repeats, "held_out_patients": int(len(data.months) // folds),
            **{f"harrell_c_{endpoint}": {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)),
                                         "min": float(np.min(v)), "max": float(np.max(v))} for endpoint, v in c.items()}}


def selection_score(result: dict[str, Any]) -> float:
    return (result["overall"]["harrell_c"] + result["disease_specific"]["harrell_c"]) / 2


def external_checks(seed: int) -> dict[str, Any]:
    """Check the *method* on small independent sets shipped in GPL packages (dev-only): each set is split
    in halves; the chosen method is refitted on one half and its 4 groups evaluated on the other."""
    sets = {}
    try:
        import oncodatasets

        nki = oncodatasets.load_dataset("breast_cancer_nki70")
        genes = [c for c in nki.columns if c not in ("time", "event", "Diam", "N", "ER", "Grade", "Age")]
        sets["nki70"] = (nki[genes].to_numpy(float), nki["time"].to_numpy(float) * 12, nki["event"].to_numpy(int))
    except ImportError:
        print("  (oncodatasets not installed: NKI70 check skipped)")
    try:
        from sksurv.datasets import load_breast_cancer

        x, y = load_breast_cancer()
        genes = [c for c in x.columns if c.startswith("X")]
        sets["desmedt_gse7390"] = (x[genes].to_numpy(float), y["t.tdm"] / 30.44, y["e.tdm"].astype(int))
    except ImportError:
        print("  (scikit-survival not installed: Desmedt check skipped)")
    results = {}
    rng = np.random.default_rng(seed)
    for name, (expression, months, events) in sets.items():
        order = rng.permutation(len(months))
        split = np.array(["train"] * len(months), dtype=object)
        split[order[len(order) // 2 :]] = "test"  # refit on one half, evaluate on the other
        cohort = Metabric([f"g{i}" for i in range(expression.shape[1])], expression, months, events, events, split)
        part = {}
        for family, fitter in (("kmeans", lambda d: fit_kmeans(d, 10, seed)),
                               ("cox", lambda d: fit_cox(d, "overall", 1.0))):
            model = fitter(cohort.subset("train"))
            held = cohort.subset("test")
            stats = group_separation(held.months, held.os_event, model.groups(held.expression))
            part[family] = {"harrell_c": stats["harrell_c"], "logrank_p": stats["logrank_p"],
                            "logrank_trend_p": stats["logrank_trend_p"], "n": int(len(held.months)),
                            "events": int(held.os_event.sum())}
            print(f"  external {name} {family}: C {stats['harrell_c']:.3f}, log-rank p {stats['logrank_p']:.1e}")
        results[name] = part
    return results


def rate_candidates(fits: list[Callable[[Metabric], GroupModel]], train: Metabric, val: Metabric) -> list[tuple]:
    """(fit, model fitted on ``train``, its validation separation) for every candidate procedure."""
    results = []
    for fit in fits:
        model = fit(train)
        result = separation(val, model.groups(val.expression))
        results.append((fit, model, result))
        print(f"  {model.method:6s} {model.params} → val C overall {result['overall']['harrell_c']:.3f}, "
              f"disease-specific {result['disease_specific']['harrell_c']:.3f}, "
              f"log-rank p {result['overall']['logrank_p']:.1e}", flush=True)
    return results


def candidate_rows(results: list[tuple]) -> list[dict[str, Any]]:
    """training.json's ``candidates``: each procedure's parameters and validation figures."""
    return [{"method": m.method, **m.params, "val_c_overall": r["overall"]["harrell_c"],
             "val_c_disease_specific": r["disease_specific"]["harrell_c"], "val_logrank_p": r["overall"]["logrank_p"]}
            for _, m, r in results]


def flat_metrics(split_metrics: dict[str, Any], slice_name: str) -> dict[str, Any]:
    """model.json's metrics of one split: both endpoints' figures side by side, per group too."""
    o, d = split_metrics["overall"], split_metrics["disease_specific"]
    return {"slice": slice_name, "n": sum(g["n"] for g in o["per_group"]),
            "harrell_c_overall": o["harrell_c"], "logrank_p_overall": o["logrank_p"],
            "logrank_trend_p_overall": o["logrank_trend_p"], "harrell_c_disease_specific": d["harrell_c"],
            "logrank_p_disease_specific": d["logrank_p"], "logrank_trend_p_disease_specific": d["logrank_trend_p"],
            "monotone_overall": o["monotone"], "monotone_disease_specific": d["monotone"],
            "per_group_overall": o["per_group"], "per_group_disease_specific": d["per_group"]}
