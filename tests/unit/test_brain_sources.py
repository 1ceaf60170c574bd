"""Leave one MRI source out: the held-out source never reaches the heads' fitting or the threshold."""

from __future__ import annotations

import numpy as np

from train.brain import sources


def fake_data() -> dict:
    split = np.array(["train", "val", "test"] * 4)
    return {"split": split, "modality": np.array([0] * 3 + [1] * 9),
            "source": np.array(["a"] * 6 + ["b"] * 6), "tumor": np.array([0, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1]),
            "type": np.array([-1, -1, -1, 0, -1, 1, -1, 2, 0, 1, -1, 2])}


def test_only_the_held_out_sources_mri_rows_are_set_aside():
    data = fake_data()
    split = sources.without(data, "a")
    # CT rows of source "a" stay where they were; its MRI rows (3..5) are held out; "b" is untouched
    assert list(split[:3]) == ["train", "val", "test"]
    assert list(split[3:6]) == ["held_out"] * 3
    assert list(split[6:]) == list(data["split"][6:])


def test_heads_and_threshold_never_see_the_held_out_source(monkeypatch):
    # GIVEN a fake head fit that records which rows it was given, WHEN source "b" is held out,
    # THEN its rows are neither training nor validation rows, and only its rows are scored.
    seen = {}

    class Constant:
        def __init__(self, classes: int) -> None:
            self.classes = classes

        def get_weights(self):
            return np.zeros((2, self.classes)), np.zeros(self.classes)

    def fit_heads(features, data, seed):
        seen["split"] = data["split"]
        return {"tumor": {"dense": Constant(2)}, "tumor_type": {"dense": Constant(3)}}, {}

    monkeypatch.setattr(sources, "fit_heads", fit_heads)
    data = fake_data()
    scores = sources.held_out_scores(data, np.ones((12, 2)), "b", seed=0)
    held = (data["modality"] == 1) & (data["source"] == "b")
    assert not np.isin(seen["split"][held], ["train", "val"]).any()
    assert scores["all"]["n"] == int(held.sum()) and scores["test"]["n"] == int((held & (data["split"] == "test")).sum())
