"""JSON Schemas of what the routes answer: the parts every task shares, and a builder for a task's.

They are the other half of the contract (requests are checked by the route schemas): published
in ``openapi.yaml``, checked against real answers by the contract tests and by Schemathesis.
Functions do not validate their own answers at run time; the tests make sure they need not.
"""

from __future__ import annotations

from typing import Any

from .ood import ASSESSMENT_SCHEMA as OOD
from .ood import REGION_ASSESSMENT_SCHEMA as REGION_OOD

NUMBER = {"type": "number"}
PROBABILITY = {"type": "number", "minimum": 0, "maximum": 1}
BASE64_PNG = {"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}

MODEL_INFO = {
    "type": "object",
    "description": "The model that answered.",
    "properties": {
        "name": {"type": "string"},
        "version": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
    "required": ["name", "version", "sha256"],
    "additionalProperties": False,
}


def probabilities(labels: list[str], description: str = "Probability per label.") -> dict[str, Any]:
    return {"type": "object", "description": description,
            "properties": {label: PROBABILITY for label in labels},
            "required": list(labels), "additionalProperties": False}


def label(labels: list[str], description: str = "The predicted label.") -> dict[str, Any]:
    return {"enum": list(labels), "description": description}


THRESHOLD = {**PROBABILITY, "description": "The positive label wins at or above this probability (chosen on validation)."}

EXPLANATION = {
    "type": "object",
    "description": "Class-activation map of the positive class, overlaid on the image (with \"explain\": true).",
    "properties": {
        "method": {"type": "string"},
        "grid": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2, "maxItems": 2},
        "peak_cell": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2},
        "heatmap_png": BASE64_PNG,
    },
    "required": ["method", "grid", "peak_cell", "heatmap_png"],
    "additionalProperties": False,
}

DICOM_INFO = {
    "type": "object",
    "description": "What was read from a DICOM input (never identifying tags).",
    "properties": {
        "modality": {"type": ["string", "null"]},
        "rows": {"type": "integer", "minimum": 1},
        "columns": {"type": "integer", "minimum": 1},
        "frames": {"type": "integer", "minimum": 1},
        "frame": {"type": "integer", "minimum": 0},
        "transfer_syntax": {"type": "string"},
        "photometric_interpretation": {"type": "string"},
        "window": {"type": "object", "properties": {"source": {"type": "string"}, "center": NUMBER, "width": NUMBER},
                   "required": ["source"], "additionalProperties": False},
    },
    "required": ["modality", "rows", "columns", "frames", "frame", "transfer_syntax", "photometric_interpretation",
                 "window"],
    "additionalProperties": False,
}

EXPRESSION_COVERAGE = {
    "type": "object",
    "description": "How much of the model's gene list the profile covered (missing genes were filled, if allowed).",
    "properties": {
        "genes_used": {"type": "integer", "minimum": 0},
        "genes_missing": {"type": "integer", "minimum": 0},
        "coverage": PROBABILITY,
    },
    "required": ["genes_used", "genes_missing", "coverage"],
    "additionalProperties": False,
}


def answer(task: str, properties: dict[str, Any], required: list[str], description: str) -> dict[str, Any]:
    """A route's 200 body: ``task`` and ``model`` (every answer names who answered), then its own fields."""
    return {
        "type": "object",
        "description": description,
        "properties": {"task": {"const": task}, "model": MODEL_INFO, **properties},
        "required": ["task", "model", *required],
        "additionalProperties": False,
    }


def binary_answer(task: str, labels: list[str], description: str, *, required: tuple[str, ...] = (),
                  **extra: dict[str, Any]) -> dict[str, Any]:
    """``label``, ``probabilities``, ``threshold`` (see :func:`.predictions.binary_prediction`) and
    ``extra`` fields, of which ``required`` are always there."""
    return answer(task, {"label": label(labels), "probabilities": probabilities(labels), "threshold": THRESHOLD,
                         "ood": OOD, **extra}, ["label", "probabilities", "threshold", *required], description)


ERROR_BODY = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
            "required": ["code", "message"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}

GATEWAY_MESSAGE = {
    "type": "object",
    "description": "An answer of API Gateway itself (key, usage plan, size, integration), not of a function.",
    "properties": {"message": {"type": "string"}},
    "required": ["message"],
    "additionalProperties": False,
}
