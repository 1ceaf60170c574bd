"""Thresholds chosen on validation: pooled over all images, and within every group (image source)."""

import numpy as np
import pytest

from train import core

# Source A's melanomas all score high; source B's spread out, so a pooled target hides B's misses.
P_POSITIVE_A = [0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0]
P_POSITIVE_B = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
P_NEGATIVE_B = [0.05, 0.25, 0.35, 0.95]


def validation():
    p = np.array(P_POSITIVE_A + P_POSITIVE_B + P_NEGATIVE_B)
    y = np.array([1] * 20 + [0] * 4)
    source = np.array(["A"] * 10 + ["B"] * 14)
    return y, p, source


def test_pooled_threshold_meets_the_target_overall_but_not_within_every_source():
    y, p, source = validation()
    pooled = core.choose_threshold(y, p, min_sensitivity=0.9)
    assert pooled["threshold"] == pytest.approx(0.3)  # 18 of 20 melanomas
    by_source = core.sensitivity_by_group(y, p, source, pooled["threshold"])
    assert by_source["A"]["sensitivity"] == 1.0 and by_source["B"]["sensitivity"] == pytest.approx(0.8)
    assert by_source["B"]["specificity"] == pytest.approx(0.5) and by_source["B"]["negatives"] == 4
    assert by_source["A"]["specificity"] is None and by_source["A"]["negatives"] == 0


def test_threshold_within_every_source_is_the_highest_that_reaches_the_target_in_each():
    y, p, source = validation()
    every = core.choose_threshold_within_every_group(y, p, source, min_sensitivity=0.9, group_name="source")
    assert every["threshold"] == pytest.approx(0.2)  # B needs 9 of its 10; 0.3 would leave it at 0.8
    assert every["val_by_group"]["B"]["sensitivity"] == pytest.approx(0.9)
    assert every["val_sensitivity"] == pytest.approx(0.95) and every["val_specificity"] == pytest.approx(0.25)
    assert every["rule"].endswith("within every source")
