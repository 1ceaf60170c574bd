"""The log-rank trend test agrees with the two-group log-rank test, where they must coincide."""

import numpy as np
import pytest

from train.survival_stats import group_separation, logrank_trend


def synthetic(seed=0, n=400):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 4, n)
    months = rng.exponential(60.0 / (1 + groups))
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
