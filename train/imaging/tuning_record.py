"""What a backbone tuning run (``python -m train.finetune``) leaves beside its weights, and how the
model cards tell of it: ``finetune.json`` is read into model.json's ``training.backbone_tuning``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SUMMARY_FILE = "finetune.json"
WEIGHTS_FILE = "backbone.weights.h5"


def recorded_fine_tuning(weights: str | None) -> dict[str, Any]:
    """``{"backbone_tuning": …}`` for a task's model.json ``training`` from the ``finetune.json``
    beside a tuned weights file (per-rate runs left out), or ``{}`` for other weights."""
    if not weights or weights in ("imagenet", "none", "default"):
        return {}
    summary = Path(weights).with_name(SUMMARY_FILE)
    if not summary.is_file():
        return {}
    record = json.loads(summary.read_text())
    return {"backbone_tuning": {k: v for k, v in record.items() if k != "runs"}}


def file_sha256(path: str | Path | None) -> str | None:
    from oncoserve_runtime.digests import sha256_of  # hashlib only: fine on a GPU machine without Powertools

    return sha256_of(path) if path else None


def tuning_runs_table(task: str, runs: list[dict[str, Any]], score: str, column: str) -> str:
    """The card's table of tuning runs compared on validation (``measurements.yaml``: run, flags, best
    validation score), each reproducible by ``python -m train.finetune run <task>`` + its flags."""
    rows = "\n".join(f"| {r['run']} | `{r['flags']}` | {r['val']:.4f} |" for r in runs)
    return (f"Tuning runs compared on validation (`python -m train.finetune run {task}` + flags; best {score} of "
            f"the run's temporary head):\n\n| run | flags | {column} |\n|---|---|---|\n" + rows)


def tuning_device(record: dict[str, Any]) -> str:
    """Where a ``train.finetune`` run trained, in words: "the CPU" or "one <GPU name>"."""
    return "the CPU" if record["device"] == "cpu" else f"one {record['device']}"


def backbone_tuning_text(record: dict[str, Any], weights: str, *, cams: bool = True,
                         title: str = "Backbone weights") -> str:
    """One model-card paragraph for backbone weights tuned by ``python -m train.finetune`` ("" if
    none): where and how it ran, then the same account as any whole-backbone run. ``cams``: the
    served graph also outputs class-activation maps (brain, skin)."""
    if not record:
        return ""
    tried = ", ".join(f"{rate}: {score:.4f}" for rate, score in record["learning_rates_tried"].items())
    return (f"\n\n{title}: ImageNet {record['backbone']} tuned by `{record['command']}` (Keras "
            f"{record['keras']} on {record['keras_backend']}, {tuning_device(record)}, {record['seconds']:.0f} s). "
            f"{fine_tuning_text(record, cams=cams)} Best validation score per learning rate tried: {tried}. The tuned "
            f"weights are committed (`{weights}`, sha256 `{record['weights_sha256'][:16]}…`), so the training command "
            f"rebuilds this model on a CPU."
            + (" The parity column above is the largest difference over every output, the CAM logit maps (unbounded) "
               "included; what the quantised model decides is measured by its AUC columns." if cams else ""))


def fine_tuning_text(fine_tuning: dict[str, Any] | str, *, backbone_tuned: bool = False, cams: bool = True) -> str:
    """One model-card paragraph from the summary ``fine_tune_top`` returned (plus what the task added)."""
    if isinstance(fine_tuning, str):  # model.json written before CPU fine-tuning existed
        return f"Fine-tuning: {fine_tuning}."
    if not fine_tuning.get("run"):
        return ("Last-stage fine-tuning on the CPU: not run (`--fine-tune-epochs 0`)." if backbone_tuned
                else "Fine-tuning: not run (frozen backbone, `--fine-tune-epochs 0`).")
    if fine_tuning["from_layer"] == "all layers":  # fine_tune_whole_backbone (records before the schedule lack it)
        schedule = (f" ({fine_tuning['schedule']} over {fine_tuning['epochs_run']} epochs)"
                    if "schedule" in fine_tuning else "")
        rule = fine_tuning.get("val_score_rule", "").rstrip(".")  # train.finetune says what the score is
        rule = f" ({rule[:1].lower()}{rule[1:]})" if rule else ""
        text = (f"Fine-tuning: every backbone layer ({fine_tuning['trainable_weights']:,} weights with the temporary "
                f"head) trained end to end on {fine_tuning['augmentation']}, batch norm frozen; "
                f"{fine_tuning['head_epochs']} head-only epochs, then learning rate {fine_tuning['learning_rate']:g}"
                f"{schedule}; validation score{rule} per epoch {fine_tuning['val_score']} (head only: "
                f"{fine_tuning['val_score_head_only']}), best epoch {fine_tuning['best_epoch']} restored. The linear "
                f"head was then refitted on the tuned features{', so the CAMs stay exact' if cams else ''}.")
        return text + (" It lost on validation." if fine_tuning.get("chosen") is False else "")
    text = (f"Fine-tuning (CPU): the backbone's last stage, from `{fine_tuning['from_layer']}` on "
            f"({fine_tuning['trainable_weights']:,} weights), trained on cached maps of "
            f"{fine_tuning.get('augmentation', 'augmented training images')} with batch norm frozen, learning rate "
            f"{fine_tuning['learning_rate']:g}; best validation loss at epoch {fine_tuning['best_epoch']} of "
            f"{fine_tuning['epochs_run']} (early stopping). Linear heads were then refitted on the tuned features, "
            f"so the CAMs stay exact.")
    if fine_tuning.get("chosen") is False:  # a task that compares tuned and frozen on validation
        text += " The tuned backbone lost to the frozen one on validation, so the frozen one ships."
    return text
