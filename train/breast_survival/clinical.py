"""
## Clinical variables

Seven METABRIC columns a clinician has at diagnosis, the ones the Nottingham Prognostic Index and
PREDICT Breast are built on. They are encoded as numbers in a fixed order (receptor status:
Positive = 1, Negative = 0) and appended to the 489 z-scores of the serving graph's input.
A missing value (17 tumour sizes and 63 grades are missing here; no patient misses more than two
values) is set to the training patients' median, in training and in serving alike, and the answer
names it.

The Nottingham Prognostic Index is computed with the published formula (Haybittle 1982, Galea
1992): 0.2 × tumour size in cm + node stage (1: no positive node, 2: 1–3, 3: ≥ 4) + grade. The
source's own `nottingham_prognostic_index` column scales the size term at a tenth of that (a 40 mm
tumour adds 0.08, not 0.8), so it is not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClinicalField:
    name: str  # the METABRIC column, and the request field
    kind: str  # "number", "integer" or "status"
    unit: str
    minimum: float
    maximum: float


CLINICAL_FIELDS = (
    ClinicalField("age_at_diagnosis", "number", "years", 18, 100),
    ClinicalField("tumor_size", "number", "mm (largest diameter)", 0, 300),
    ClinicalField("lymph_nodes_examined_positive", "integer", "positive lymph nodes", 0, 100),
    ClinicalField("neoplasm_histologic_grade", "integer", "histologic grade (Elston-Ellis)", 1, 3),
    ClinicalField("er_status", "status", "oestrogen receptor: Positive = 1, Negative = 0", 0, 1),
    ClinicalField("pr_status", "status", "progesterone receptor: Positive = 1, Negative = 0", 0, 1),
    ClinicalField("her2_status", "status", "HER2: Positive = 1, Negative = 0", 0, 1),
)
NAMES = tuple(f.name for f in CLINICAL_FIELDS)
AGE, SIZE, NODES, GRADE = 0, 1, 2, 3  # columns the index and the feature transform read
MAX_IMPUTED = 2  # the most any training patient misses; a request missing more is refused
FEATURES = ("nottingham_prognostic_index", "age_at_diagnosis", "log_tumor_size_mm", "log1p_positive_nodes",
            "neoplasm_histologic_grade", "er_status", "pr_status", "her2_status")


def clinical_columns(frame) -> np.ndarray:
    """(patients, 7) float64 in CLINICAL_FIELDS order, NaN where the source has no value."""
    columns = []
    for field in CLINICAL_FIELDS:
        column = frame[field.name]
        if field.kind == "status":
            columns.append(np.where(column.isna(), np.nan, (column == "Positive").astype(float)))
        else:
            columns.append(column.to_numpy(dtype=np.float64))
    return np.column_stack(columns)


def training_medians(clinical: np.ndarray) -> np.ndarray:
    return np.nanmedian(clinical, axis=0)


def imputed(clinical: np.ndarray, fill_values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(clinical), fill_values[None, :], clinical)


def nottingham_prognostic_index(clinical: np.ndarray) -> np.ndarray:
    nodes = clinical[:, NODES]
    node_stage = np.where(nodes < 1, 1.0, np.where(nodes < 4, 2.0, 3.0))
    return 0.02 * clinical[:, SIZE] + node_stage + clinical[:, GRADE]


def clinical_features(clinical: np.ndarray) -> np.ndarray:
    """The covariates of the clinical Cox models (FEATURES order): the index, then the seven with size
    and node count on a log scale (their hazards flatten for large values)."""
    return np.column_stack([nottingham_prognostic_index(clinical), clinical[:, AGE],
                            np.log(np.maximum(clinical[:, SIZE], 1.0)), np.log1p(clinical[:, NODES]),
                            clinical[:, GRADE:]])


def check_imputation_bound(clinical: np.ndarray) -> None:
    """The serving rule (at most MAX_IMPUTED unknown values) must cover every patient the model learnt from."""
    most = int(np.isnan(clinical).sum(axis=1).max())
    if most > MAX_IMPUTED:
        raise ValueError(f"a patient misses {most} clinical values; serving imputes at most {MAX_IMPUTED}")
