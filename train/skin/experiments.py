"""Runs measured but not shipped (``python -m train.skin --record-experiment``): what training.json's
``training.experiments`` keeps of each, taken from the model.json and training.json that run wrote,
so no figure is copied by hand."""

from __future__ import annotations

from typing import Any

from train import core
from train.skin.card import write_card
from train.skin.data import TASK


def experiment_from_run(run: dict[str, Any], command: str, decision: str) -> dict[str, Any]:
    """What ``training.experiments`` keeps of a run that was measured but not shipped (taken from
    the model.json that run wrote, so no figure is copied by hand)."""
    chosen = run["training"]["candidates"][run["training"]["chosen"]]
    m = run["metrics"]
    return {"command": command, "chosen": run["training"]["chosen"], "fine_tuning": run["training"]["fine_tuning"],
            "val": {"HAM10000": chosen["val_auc_HAM10000"], "ISIC2017": chosen["val_auc_ISIC2017"],
                    "mean": chosen["val_auc_mean"]},
            "test": {"all": m["test"]["roc_auc"], "HAM10000": m["test_HAM10000"]["roc_auc"],
                     "ISIC2017": m["test_ISIC2017"]["roc_auc"], "sensitivity": m["test"]["sensitivity"],
                     "specificity": m["test"]["specificity"]},
            "decision": decision}


def record_experiment(name: str, run: dict[str, Any], command: str, decision: str) -> None:
    """Add ``run`` (its merged model.json + training.json) to the committed record; re-render the card."""
    def add(record: dict[str, Any]) -> None:
        record["training"].setdefault("experiments", {})[name] = experiment_from_run(run, command, decision)

    write_card(core.update_training_record(TASK, add))
