"""Survival statistics for group models: Kaplan–Meier tables, log-rank (multi-group and trend),
Harrell's C, and whether survival falls group by group (monotone). lifelines does the estimation;
the trend test is the standard score test (weights = group rank), which lifelines does not provide."""

from __future__ import annotations

from typing import Any

import numpy as np

FIVE_AND_TEN_YEARS = (60.0, 120.0)  # months: the landmarks the survival tables and the ordering check report
RMST_HORIZON_MONTHS = 120.0  # groups are ranked, and their order checked, by 10-year restricted mean survival


def km_table(months: np.ndarray, events: np.ndarray, grid: np.ndarray) -> dict[str, Any]:
    """Kaplan–Meier survival with its 95% CI on ``grid`` (months), median, 5- and 10-year survival."""
    from lifelines import KaplanMeierFitter

    fitter = KaplanMeierFitter().fit(months, events)
    survival = fitter.survival_function_at_times(grid).to_numpy()
    ci = fitter.confidence_interval_survival_function_
    # The CI is a step function on the event times: take the last step at or before each grid point.
    steps = np.searchsorted(ci.index.to_numpy(), grid, side="right") - 1
    lower = ci.iloc[np.clip(steps, 0, None), 0].to_numpy()
    upper = ci.iloc[np.clip(steps, 0, None), 1].to_numpy()
    median = float(fitter.median_survival_time_)
    at = fitter.survival_function_at_times(FIVE_AND_TEN_YEARS).to_numpy()
    return {
        "months": grid.tolist(),
        "probability": survival.tolist(),
        "ci_lower": lower.tolist(),
        "ci_upper": upper.tolist(),
        "median_months": None if not np.isfinite(median) else median,
        "at_5_years": float(at[0]),
        "at_10_years": float(at[1]),
        "n": int(len(months)),
        "events": int(events.sum()),
    }


def restricted_mean_survival(months: np.ndarray, events: np.ndarray, horizon: float = RMST_HORIZON_MONTHS) -> float:
    """Area under the KM curve up to ``horizon`` months: orders groups without needing a median."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import restricted_mean_survival_time

    return float(restricted_mean_survival_time(KaplanMeierFitter().fit(months, events), t=horizon))


def logrank_trend(months: np.ndarray, events: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Score test for a monotone trend across ordered groups (weights 0, 1, 2, …): chi² with 1 df."""
    from scipy.stats import chi2

    levels = np.unique(groups)
    weights = levels.astype(float)
    observed_minus_expected = np.zeros(len(levels))
    covariance = np.zeros((len(levels), len(levels)))
    for t in np.unique(months[events == 1]):
        at_risk = np.array([np.sum((months >= t) & (groups == g)) for g in levels], dtype=float)
        deaths = np.array([np.sum((months == t) & (events == 1) & (groups == g)) for g in levels], dtype=float)
        n, d = at_risk.sum(), deaths.sum()
        if n < 2:
            continue
        share = at_risk / n
        observed_minus_expected += deaths - d * share
        covariance += d * (n - d) / (n - 1) * (np.diag(share) - np.outer(share, share))
    score = float(weights @ observed_minus_expected)
    variance = float(weights @ covariance @ weights)
    statistic = score**2 / variance
    return {"chi2": statistic, "p": float(chi2.sf(statistic, 1))}


def group_summary(months: np.ndarray, events: np.ndarray) -> dict[str, Any]:
    """One group's size, events and the three figures its place in the order is judged by."""
    from lifelines import KaplanMeierFitter

    at = KaplanMeierFitter().fit(months, events).survival_function_at_times(FIVE_AND_TEN_YEARS).to_numpy()
    return {"n": int(len(months)), "events": int(events.sum()),
            "rmst_10_years": restricted_mean_survival(months, events),
            "survival_5_years": float(at[0]), "survival_10_years": float(at[1])}


def is_monotone(per_group: list[dict[str, Any]]) -> bool:
    """"Monotone curves", made checkable: every group's 10-year restricted mean survival and its
    Kaplan–Meier survival at 5 and 10 years are no better than the previous group's. (Curves that
    never cross at any time is too strict: all of them start at 1 and cross in the first months.)"""
    keys = ("rmst_10_years", "survival_5_years", "survival_10_years")
    return all(later[key] <= earlier[key] for earlier, later in zip(per_group, per_group[1:]) for key in keys)


def group_separation(months: np.ndarray, events: np.ndarray, groups: np.ndarray) -> dict[str, Any]:
    """Multi-group log-rank p, trend p and Harrell's C of the group rank (higher group = worse), and
    whether survival is ordered by group (``monotone``, from the per-group figures)."""
    from lifelines.statistics import multivariate_logrank_test
    from lifelines.utils import concordance_index

    per_group = [{"group": int(g), **group_summary(months[groups == g], events[groups == g])}
                 for g in np.unique(groups)]
    return {
        "logrank_p": float(multivariate_logrank_test(months, groups, events).p_value),
        "logrank_trend_p": logrank_trend(months, events, groups)["p"],
        "harrell_c": float(concordance_index(months, -groups, events)),
        "monotone": is_monotone(per_group),
        "per_group": per_group,
    }
