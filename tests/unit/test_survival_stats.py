"""Survival statistics: the log-rank trend test agrees with the two-group log-rank test where they must
coincide; separation and ordering respond to how the groups really differ."""

import numpy as np
import pytest

from train.breast_survival.survival_stats import group_separation, is_monotone, logrank_trend


def synthetic(seed=0, n=400, mean_months=60.0):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 4, n)
    months = rng.exponential(mean_months / (1 + groups))
    events = (rng.random(n) < 0.7).astype(int)
    return months, events, groups


def test_trend_equals_logrank_for_two_groups():
    from lifelines.statistics import logrank_test

    months, events, groups = synthetic()
    two = (groups > 1).astype(int)
    expected = logrank_test(months[two == 0], months[two == 1], events[two == 0], events[two == 1]).p_value
    assert logrank_trend(months, events, two)["p"] == pytest.approx(expected, rel=1e-6)


def test_ordered_hazards_give_a_strong_trend_and_concordance():
    months, events, groups = synthetic()
    result = group_separation(months, events, groups)
    assert result["logrank_trend_p"] < 1e-8 and result["harrell_c"] > 0.6
    shuffled = group_separation(months, events, np.random.default_rng(1).permutation(groups))
    assert shuffled["logrank_trend_p"] > 1e-3 and abs(shuffled["harrell_c"] - 0.5) < 0.05


def test_monotone_when_each_group_does_worse_and_not_when_two_swap():
    months, events, groups = synthetic(mean_months=300.0)  # long enough that 10-year survival is not ~0 everywhere
    assert group_separation(months, events, groups)["monotone"]
    swapped = np.choose(groups, [0, 2, 1, 3])  # groups 1 and 2 trade places: survival no longer falls group by group
    result = group_separation(months, events, swapped)
    assert not result["monotone"]
    assert [g["n"] for g in result["per_group"]] == [int((swapped == g).sum()) for g in range(4)]


def test_monotone_needs_every_figure_ordered():
    def group(rmst, five, ten):
        return {"rmst_10_years": rmst, "survival_5_years": five, "survival_10_years": ten}

    assert is_monotone([group(110, 0.9, 0.8), group(100, 0.8, 0.7), group(100, 0.8, 0.6)])
    assert not is_monotone([group(110, 0.9, 0.8), group(100, 0.8, 0.7), group(99, 0.8, 0.75)])
    assert not is_monotone([group(110, 0.9, 0.8), group(111, 0.8, 0.7)])
