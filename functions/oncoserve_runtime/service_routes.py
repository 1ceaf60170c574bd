"""``GET <prefix>/model`` and ``GET <prefix>/health``: what every function answers besides predictions.

As model servers do (KServe v2's model metadata and readiness): the metadata is the public part of
``model.json`` (what a client needs to call the model and judge its answers; not the training
record), and health is a cheap readiness check (the artifact loaded and verified, no inference).
"""

from __future__ import annotations

from typing import Any

from . import response_schemas as rs
from .model import ModelBundle
from .routes import Route

NOTICE = "Research software, not a medical device: not for diagnosis or treatment decisions."
_INPUT_FIELDS = ("kind", "shape", "channels", "value_range", "feature_id", "features")
_OUTPUT_FIELDS = ("modality_labels", "type_labels", "group_names")
_THRESHOLD_FIELDS = ("threshold", "thresholds_by_modality", "threshold_rule", "rule")


def describe(model: ModelBundle) -> dict[str, Any]:
    """The ``GET <prefix>/model`` answer's own fields."""
    meta = model.metadata
    spec, output = meta["input"], meta["output"]
    contract = {key: spec[key] for key in _INPUT_FIELDS if key in spec}
    if "missing" in spec:
        contract["missing"] = {"min_coverage": spec["missing"]["min_coverage"], "rule": spec["missing"]["rule"]}
    return {
        "created": meta.get("created"),
        "labels": model.labels,
        **{key: output[key] for key in _OUTPUT_FIELDS if key in output},
        "thresholds": {key: output[key] for key in _THRESHOLD_FIELDS if key in output},
        "input": contract,
        "preprocessing": meta["preprocessing"],
        "metrics": {name: value for name, value in meta["metrics"].items() if name.startswith("test")},
        "data": {key: meta["data"][key] for key in ("source", "citation", "license") if key in meta["data"]},
        "intended_use": meta["intended_use"],
        "out_of_scope": meta["out_of_scope"],
        "limitations": meta["limitations"],
        "card": f"functions/{meta['task']}/MODEL_CARD.md",
        "notice": NOTICE,
    }


def _metadata_schema(task: str) -> dict[str, Any]:
    text = {"type": "string"}
    strings = {"type": "array", "items": text}
    return rs.answer(task, {
        "created": {"type": ["string", "null"]},
        "labels": strings, "modality_labels": strings, "type_labels": strings, "group_names": strings,
        "thresholds": {"type": "object", "properties": {
            "threshold": rs.PROBABILITY, "threshold_rule": text, "rule": text,
            "thresholds_by_modality": {"type": "object", "additionalProperties": rs.PROBABILITY}}},
        "input": {"type": "object", "required": ["kind", "shape"], "properties": {
            "kind": {"enum": ["image", "expression"]},
            "shape": {"type": "array", "items": {"type": ["integer", "null"]}},
            "features": {**strings, "description": "The model's genes, in its own order (expression models)."},
            "missing": {"type": "object", "properties": {"min_coverage": rs.PROBABILITY, "rule": text}}}},
        "preprocessing": {"type": "object"},
        "metrics": {"type": "object", "description": "Test-split metrics from the model card.",
                    "additionalProperties": {"type": "object"}},
        "data": {"type": "object", "properties": {"source": text, "citation": text, "license": text}},
        "intended_use": text, "out_of_scope": text, "limitations": text,
        "card": {**text, "description": "The model card, as a path in the repository."},
        "notice": text,
    }, ["labels", "thresholds", "input", "metrics", "data", "intended_use", "card", "notice"],
        "The model's public metadata: labels, thresholds, input contract, test metrics, data licence.")


def service_routes(task: str, prefix: str) -> list[Route]:
    """The metadata and health routes of the function serving ``task`` under ``prefix``."""
    return [
        Route(f"{prefix}/model", None, lambda _body, model: describe(model), method="GET",
              response=_metadata_schema(task), summary="Model metadata: labels, thresholds, input, test metrics"),
        Route(f"{prefix}/health", None, lambda _body, _model: {"status": "ready"}, method="GET",
              response=rs.answer(task, {"status": {"const": "ready"}}, ["status"],
                                 "The function's model is loaded and verified (no inference is run)."),
              summary="Readiness: the model is loaded and verified"),
    ]
