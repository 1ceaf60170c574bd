"""The out-of-distribution guard, the same for every model.

The TFLite graph scores how far an input lies from the training data (``model.json`` ``ood``: the
score tensor and two thresholds chosen on validation). Above the refusal threshold the answer is a
422 ``out_of_distribution`` carrying the score, unless the request asks ``"ood": "report"`` (research
use: the prediction with the flag); above the atypical threshold the answer is given, flagged.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np

from .errors import UnprocessableEntityError

POLICY_SCHEMA = {"enum": ["refuse", "report"],
                 "description": "What to do with an input far outside the training data: refuse it with 422 "
                                "out_of_distribution (default), or answer with ood.status out_of_distribution."}


def assess(spec, score: float) -> dict[str, Any]:
    """``{"score", "threshold", "atypical_threshold", "status"}`` for one input's score (NaN: out)."""
    finite = math.isfinite(score)
    if not finite or score > spec.refuse_threshold:
        status = "out_of_distribution"
    elif score > spec.atypical_threshold:
        status = "atypical"
    else:
        status = "in_distribution"
    return {"score": round(score, 4) if finite else None, "threshold": spec.refuse_threshold,
            "atypical_threshold": spec.atypical_threshold, "status": status}


def assess_rows(model, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]] | None:
    """One assessment per row of a batch's outputs; None when the model has no guard."""
    spec = model.contract.ood
    if spec is None:
        return None
    return [assess(spec, float(value)) for value in np.asarray(outputs[spec.tensor]).reshape(-1)]


def region_assessment(spec, scores: np.ndarray) -> dict[str, Any]:
    """``assess`` for a tiled image from its tissue tiles' ``scores`` (a NaN counts as out): their median
    against the region ``spec``'s thresholds for that many tiles. No tissue tile at all (a blank or
    all-glass image) is out too: nothing in it is what the model was trained on."""
    scores = np.where(np.isnan(scores), np.inf, np.asarray(scores, np.float64))
    index = min(max(len(scores), 1), len(spec.refuse_thresholds)) - 1
    thresholds = SimpleNamespace(refuse_threshold=spec.refuse_thresholds[index],
                                 atypical_threshold=spec.atypical_thresholds[index])
    return {**assess(thresholds, float(np.median(scores)) if len(scores) else math.nan), "tissue_tiles": int(len(scores))}


def region_guard(model, scores: np.ndarray, body: dict[str, Any]) -> dict[str, Any] | None:
    """The ``ood`` block of a tiled image's answer (``region_assessment``); raises 422
    ``out_of_distribution`` when it is out unless ``body["ood"] == "report"``. None when the model has
    no region guard."""
    spec = model.contract.ood.region if model.contract.ood is not None else None
    if spec is None:
        return None
    block = region_assessment(spec, scores)
    if block["status"] == "out_of_distribution" and body.get("ood") != "report":
        raise UnprocessableEntityError(
            "out_of_distribution",
            ("Taken together (the median of its tiles' scores), this image lies far outside the data the model was "
             "trained on" if len(scores) else "This image has no tissue tile (every tile is background)")
            + "; it is not scored. Send \"ood\": \"report\" to score it anyway, flagged.", details={"ood": block})
    return block


def guard(model, outputs: dict[str, np.ndarray], body: dict[str, Any]) -> dict[str, Any] | None:
    """The ``ood`` block of a one-input answer; raises 422 ``out_of_distribution`` for an input above
    the refusal threshold unless ``body["ood"] == "report"``. None when the model has no guard."""
    rows = assess_rows(model, outputs)
    if rows is None:
        return None
    block = rows[0]
    if block["status"] == "out_of_distribution" and body.get("ood") != "report":
        raise UnprocessableEntityError(
            "out_of_distribution",
            "This input lies far outside the data the model was trained on (a different kind of image or "
            "profile, a blank or corrupted upload); it is not scored. Send \"ood\": \"report\" to get the "
            "prediction anyway, flagged.", details={"ood": block})
    return block


def with_ood(response: dict[str, Any], block: dict[str, Any] | None) -> dict[str, Any]:
    """``response`` with its ``ood`` block, when the model has a guard."""
    return response if block is None else {**response, "ood": block}


ASSESSMENT_SCHEMA = {
    "type": "object",
    "description": "How typical the input is of the training data (score: distance in the model's feature space).",
    "properties": {
        "score": {"type": ["number", "null"], "description": "null when not finite"},
        "threshold": {"type": "number", "description": "Refused above this score (chosen on validation: <= 1% refused)."},
        "atypical_threshold": {"type": "number", "description": "Flagged atypical above this score (validation 95th percentile)."},
        "status": {"enum": ["in_distribution", "atypical", "out_of_distribution"]},
    },
    "required": ["score", "threshold", "atypical_threshold", "status"],
    "additionalProperties": False,
}
REGION_ASSESSMENT_SCHEMA = {
    **ASSESSMENT_SCHEMA,
    "description": "How typical the image is as a whole: the median score of its tissue tiles, against thresholds "
                   "set on validation regions of as many tiles (a patient's neighbouring patches).",
    "properties": {**ASSESSMENT_SCHEMA["properties"],
                   "tissue_tiles": {"type": "integer", "minimum": 0,
                                    "description": "Tissue tiles the median is taken over (0: none, the image is refused)."}},
    "required": [*ASSESSMENT_SCHEMA["required"], "tissue_tiles"],
}
