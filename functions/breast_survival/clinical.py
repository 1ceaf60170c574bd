"""The optional ``clinical`` block of a breast-survival request, and one patient's predicted curves.

The request schema states each field's type, unit and range (a test keeps it equal to what
``model.json`` says the model was trained on). A field that is absent or null is unknown: up to
``input.clinical.max_imputed`` unknown values are each set to the training median and named in the
answer (the training patients miss at most two); more are refused with 422 ``clinical_incomplete``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from oncoserve_runtime import UnprocessableEntityError

_STATUS = {"Positive": 1.0, "Negative": 0.0}


def _number(description: str, minimum: float, maximum: float, kind: str = "number") -> dict[str, Any]:
    return {"type": [kind, "null"], "minimum": minimum, "maximum": maximum, "description": description}


def _status(description: str) -> dict[str, Any]:
    return {"enum": ["Positive", "Negative", None], "description": description}


CLINICAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Optional clinical variables (METABRIC column names). With them the clinical + expression "
                   "model answers; an absent or null field is unknown and imputed (at most two).",
    "properties": {
        "age_at_diagnosis": _number("Age at diagnosis, years.", 18, 100),
        "tumor_size": _number("Largest tumour diameter, mm.", 0, 300),
        "lymph_nodes_examined_positive": _number("Number of positive lymph nodes.", 0, 100, "integer"),
        "neoplasm_histologic_grade": _number("Histologic grade (Elston-Ellis), 1-3.", 1, 3, "integer"),
        "er_status": _status("Oestrogen receptor status."),
        "pr_status": _status("Progesterone receptor status."),
        "her2_status": _status("HER2 status."),
    },
    "additionalProperties": False,
}

@dataclass(frozen=True)
class ClinicalValues:
    row: np.ndarray  # the graph's clinical columns, model.json order, unknown ones filled
    imputed: tuple[str, ...]


def clinical_values(clinical: dict[str, Any], spec: Any) -> ClinicalValues:
    """Encode a validated ``clinical`` block in the order of ``spec.fields`` (model.json input.clinical)."""
    unknown = tuple(f.name for f in spec.fields if clinical.get(f.name) is None)
    if len(unknown) > spec.max_imputed:
        raise UnprocessableEntityError(
            "clinical_incomplete", f"{len(unknown)} clinical values are unknown ({', '.join(unknown)}); the model "
            f"imputes at most {spec.max_imputed}. Send them, or leave out 'clinical' for the expression-only model.",
            details={"unknown": list(unknown), "max_imputed": spec.max_imputed})
    row = [f.fill_value if f.name in unknown else _STATUS[clinical[f.name]] if f.kind == "status" else float(clinical[f.name])
           for f in spec.fields]
    return ClinicalValues(np.asarray(row, dtype=np.float32), unknown)


def predicted_survival(curve: np.ndarray, months: tuple[float, ...], endpoint: str) -> dict[str, Any]:
    """One endpoint's predicted curve, its 5- and 10-year survival and the median (null if not reached)."""
    curve = np.clip(np.nan_to_num(curve.astype(float), nan=0.0), 0.0, 1.0)
    grid = np.asarray(months)
    below = np.flatnonzero(curve <= 0.5)
    median = None
    if below.size:
        i = int(below[0])  # interpolate between the last grid point above 0.5 and the first at or below it
        median = float(grid[0] if i == 0 else
                       grid[i - 1] + (curve[i - 1] - 0.5) / (curve[i - 1] - curve[i]) * (grid[i] - grid[i - 1]))
    return {"endpoint": endpoint, "five_year": float(np.interp(60.0, grid, curve)),
            "ten_year": float(np.interp(120.0, grid, curve)), "median_months": median,
            "curve": [{"months": float(m), "probability": float(p)} for m, p in zip(grid, curve)]}
