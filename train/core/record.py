"""The model's two JSON files: the serving contract ``model/model.json`` (what a function loads at
cold start, ``oncoserve_runtime.contract``) and the training record ``model/training.json`` beside it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from train.core.paths import REPO_ROOT, function_dir
from train.core.reproducibility import library_versions

TRAINING_RECORD_SCHEMA = "oncoserve.training/v1"


# Served as written: must equal the value the reported metrics were computed at.
EXACT_KEYS = {"threshold", "thresholds_by_modality", "refuse_threshold", "atypical_threshold"}


def rounded(value: Any, digits: int = 4) -> Any:
    """Round floats to ``digits`` significant digits inside nested dicts/lists (metadata humans read),
    except a number, or a mapping of numbers, under ``EXACT_KEYS``: an int8 model's probabilities sit
    on 1/256 steps, so a threshold rounded from 0.359375 to 0.3594 moved every patch scored exactly
    0.359375 to the other label. A record under such a key (the threshold with its rule and
    validation figures) is rounded like any other, its own ``threshold`` entry kept."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: v if k in EXACT_KEYS and is_numeric(v) else rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def is_numeric(value: Any) -> bool:
    """A number, or a mapping whose values are all numbers (thresholds per modality)."""
    if isinstance(value, dict):
        return all(isinstance(v, (int, float)) for v in value.values())
    return isinstance(value, (int, float))


def write_model_json(task: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write the serving contract ``functions/<task>/model/model.json`` and the training record
    ``training.json`` beside it (floats rounded); return both merged, as the card renderers read them.

    The contract holds the keys of ``oncoserve_runtime.contract`` (what a function loads at cold
    start); everything else (changelog, candidates, conversion tables, tuning runs, plots) is the
    record. ``training.experiments`` (runs measured by other commands, e.g. ``make
    experiment-histopathology``) is carried over from the record being replaced: retraining the
    shipped model does not redo them."""
    from oncoserve_runtime.contract import CONTRACT_KEYS, CONTRACT_SCHEMA

    previous = read_model_json(task) if model_json_path(task).exists() else {}
    experiments = previous.get("training", {}).get("experiments")
    if experiments and "experiments" not in metadata.get("training", {}):
        metadata = {**metadata, "training": {**metadata["training"], "experiments": experiments}}
    final = rounded({"schema": CONTRACT_SCHEMA, "created": dt.date.today().isoformat(), **metadata,
                     "versions": library_versions()})
    contract = {key: value for key, value in final.items() if key in CONTRACT_KEYS}
    record = {"schema": TRAINING_RECORD_SCHEMA, "name": final["name"], "version": final["version"],
              **{key: value for key, value in final.items() if key not in CONTRACT_KEYS}}
    for path, document in ((model_json_path(task), contract), (training_record_path(task), record)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
        print(f"wrote {path.relative_to(REPO_ROOT)}", flush=True)
    return final


def model_json_path(task: str) -> Path:
    return function_dir(task) / "model" / "model.json"


def training_record_path(task: str) -> Path:
    return function_dir(task) / "model" / "training.json"


def read_model_json(task: str) -> dict[str, Any]:
    """The contract and the training record of ``task``'s committed model, as one document."""
    contract = json.loads(model_json_path(task).read_text())
    record_path = training_record_path(task)
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    return {**contract, **{key: value for key, value in record.items() if key not in ("schema", "name", "version")}}


def update_training_record(task: str, update) -> dict[str, Any]:
    """Change ``training.json`` in place with ``update(record)`` (e.g. add a run measured by another
    command), leaving the serving contract alone; return contract and record merged, for the card."""
    path = training_record_path(task)
    record = json.loads(path.read_text())
    update(record)
    path.write_text(json.dumps(rounded(record), indent=2, allow_nan=False) + "\n")
    return read_model_json(task)
