"""
## Data

Overall-survival event = 1 - `overall_survival` (the column is 1 = alive); disease-specific event =
`death_from_cancer == "Died of Disease"`. The split is a seeded hash of `patient_id`
(60/20/20), so it never changes when rows are added or reordered. The gene z-scores were
standardised by the source over all 1,904 patients; the models re-standardise on training patients.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from train import core
from train.breast_survival.clinical import clinical_columns

TASK = "breast_survival"
LABELS = ["high", "above_average", "below_average", "very_low"]
GROUP_NAMES = ["high survival (best prognosis)", "above-average survival", "below-average survival",
               "very low survival (worst prognosis)"]
SPLIT_SEED = "metabric-2026"


@dataclass
class Metabric:
    genes: list[str]
    expression: np.ndarray  # (patients, 489) source z-scores
    months: np.ndarray
    os_event: np.ndarray
    dss_event: np.ndarray
    split: np.ndarray  # "train" / "val" / "test"
    clinical: np.ndarray | None = None  # (patients, 7) in clinical.CLINICAL_FIELDS order, NaN = missing

    def events(self, endpoint: str) -> np.ndarray:
        return self.os_event if endpoint == "overall" else self.dss_event

    def standardised(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, sd, z): re-standardised on these patients (training patients only, by the callers)."""
        mean, scale = self.expression.mean(axis=0), self.expression.std(axis=0)
        return mean, scale, (self.expression - mean) / scale

    def subset(self, *names: str) -> "Metabric":
        return self.rows(np.isin(self.split, names))

    def rows(self, index: np.ndarray) -> "Metabric":
        return Metabric(self.genes, self.expression[index], self.months[index], self.os_event[index],
                        self.dss_event[index], self.split[index],
                        None if self.clinical is None else self.clinical[index])


def split_of(patient_id: int) -> str:
    fraction = int(hashlib.sha256(f"{SPLIT_SEED}-{patient_id}".encode()).hexdigest()[:8], 16) / 16**8
    return "train" if fraction < 0.6 else "val" if fraction < 0.8 else "test"


def load_metabric() -> Metabric:
    import pandas as pd

    frame = pd.read_csv(core.task_data_dir(TASK) / "METABRIC_RNA_Mutation.csv", low_memory=False)
    genes = list(frame.columns[31:520])
    return Metabric(
        genes=genes,
        expression=frame[genes].to_numpy(dtype=np.float64),
        months=frame["overall_survival_months"].to_numpy(dtype=np.float64),
        os_event=(1 - frame["overall_survival"].to_numpy()).astype(int),
        dss_event=(frame["death_from_cancer"] == "Died of Disease").to_numpy().astype(int),
        split=np.array([split_of(int(p)) for p in frame["patient_id"]]),
        clinical=clinical_columns(frame),
    )
