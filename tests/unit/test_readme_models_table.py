"""The README's models table states what each committed model.json says: a retrained model whose
figures, format or size changed must not leave the front page describing the old one."""

import re
from pathlib import Path

import pytest

from train.core import read_model_json

REPO = Path(__file__).resolve().parents[2]

# (metrics split, key) whose value each task's row states at 3 decimals.
ROW_FIGURES = {
    "leukemia": [("test", "roc_auc")],
    "breast_survival": [("test", "harrell_c_overall"), ("test", "harrell_c_disease_specific")],
    "histopathology": [("test", key) for key in ("roc_auc", "sensitivity", "specificity", "balanced_accuracy",
                                                 "accuracy", "f1")],
    "brain": [(split, key) for split in ("test_ct", "test_mri") for key in ("recall", "specificity", "roc_auc")]
    + [("test_mri_type", "accuracy")],
    "skin": [("test", key) for key in ("roc_auc", "roc_auc_ci_low", "roc_auc_ci_high", "sensitivity", "specificity")]
    + [("test_HAM10000", "roc_auc"), ("test_ISIC2017", "roc_auc"), ("test_ISIC2017", "sensitivity"),
       ("test_ISIC2017", "specificity")],
}


def models_table_row(task: str) -> str:
    rows = [line for line in (REPO / "README.md").read_text().splitlines() if line.startswith(f"| {task} |")]
    assert len(rows) == 1, f"README has {len(rows)} models-table rows for {task}"
    return rows[0]


def stated_decimals(row: str) -> list[float]:
    return [float(x) for x in re.findall(r"(?<![\d.])\d\.\d{3}(?!\d)", row)]


@pytest.mark.parametrize("task", sorted(ROW_FIGURES))
def test_row_states_the_committed_metrics(task):
    metadata = read_model_json(task)
    stated = stated_decimals(models_table_row(task))
    for split, key in ROW_FIGURES[task]:
        value = metadata["metrics"][split][key]
        # model.json keeps 4 decimals, so a value ending in 5 may be stated either way
        assert any(abs(x - value) <= 0.0005 + 1e-9 for x in stated), f"{task} {split}.{key} = {value} not in README"


def test_brain_row_states_every_mri_sources_figures_and_the_leave_one_source_out_recall():
    import json

    row = models_table_row("brain")
    names = {"multimodal_ct_mri": "multimodal set", "nickparvar_training": "Nickparvar"}
    by_source = read_model_json("brain")["metrics"]["test_mri_by_source"]
    assert set(by_source) == set(names)
    stated = f"per source: {names['multimodal_ct_mri']} " + " / ".join(
        f"{by_source['multimodal_ct_mri'][k]:.3f}" for k in ("recall", "specificity"))
    assert stated in row, stated
    assert f"{names['nickparvar_training']} {by_source['nickparvar_training']['recall']:.3f} / " \
           f"{by_source['nickparvar_training']['specificity']:.3f}" in row
    types = " / ".join(f"{by_source[s]['type_accuracy']:.3f}" for s in names)
    assert f"({types})" in row, types
    loso = json.loads((REPO / "functions" / "brain" / "leave_one_source_out.json").read_text())
    for source in names:
        assert f"{names[source]} held out {loso[source]['test']['recall']:.3f}" in row, source


def test_leukemia_row_states_the_independent_set_count():
    test = read_model_json("leukemia")["metrics"]["test"]
    assert f"**{test['correct']}/{test['n']}**" in models_table_row("leukemia")


@pytest.mark.parametrize("task", sorted(ROW_FIGURES))
def test_row_states_the_artifact_format_and_size(task):
    artifact = read_model_json(task)["artifact"]
    row = models_table_row(task)
    match = re.search(rf"[(;] ?{artifact['variant']}, ([\d.]+) (MB|kB)\)", row)
    assert match, f"{task}: README does not say ({artifact['variant']}, <size>)"
    stated, unit = float(match.group(1)), match.group(2)
    actual = artifact["bytes"] / (1e6 if unit == "MB" else 1e3)
    last_digit = 10.0 ** -len(match.group(1).partition(".")[2])
    assert abs(stated - actual) <= last_digit / 2 + 1e-9, f"{task}: README says {stated} {unit}, file is {actual:.3f}"


def test_breast_survival_row_states_whether_the_test_curves_are_monotone():
    test = read_model_json("breast_survival")["metrics"]["test"]
    monotone = test["monotone_overall"] and test["monotone_disease_specific"]
    row = models_table_row("breast_survival")
    assert ("monotone curves — met on test" in row) == monotone, f"model.json: monotone on test = {monotone}"
