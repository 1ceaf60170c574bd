"""
## Data

The Golub files: rows are probes, columns samples; each sample column is followed by an Affymetrix
`call` column (dropped). Sample columns are *not* in numeric order, so labels are joined by id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from train import core

TASK = "leukemia"
LABELS = ["ALL", "AML"]
POSITIVE = "AML"
# Golub / Dudoit et al. (2002) preprocessing of MAS-4 average-difference values.
FLOOR, CEILING = 100.0, 16000.0
MIN_FOLD_CHANGE, MIN_RANGE = 5.0, 500.0


@dataclass
class GolubSplit:
    expression: np.ndarray  # (samples, probes) raw intensities
    labels: np.ndarray  # 0 = ALL, 1 = AML
    sample_ids: list[int]


def load_golub() -> tuple[list[str], GolubSplit, GolubSplit]:
    import pandas as pd

    folder = core.task_data_dir(TASK)
    actual = pd.read_csv(folder / "actual.csv")
    label_by_id = {int(p): LABELS.index(c) for p, c in zip(actual["patient"], actual["cancer"])}

    def read(name: str) -> tuple[list[str], GolubSplit]:
        frame = pd.read_csv(folder / name)
        sample_columns = [c for c in frame.columns if c.strip().isdigit()]
        ids = [int(c) for c in sample_columns]
        matrix = frame[sample_columns].to_numpy(dtype=np.float64).T
        return list(frame["Gene Accession Number"]), GolubSplit(matrix, np.array([label_by_id[i] for i in ids]), ids)

    genes, train = read("data_set_ALL_AML_train.csv")
    test_genes, test = read("data_set_ALL_AML_independent.csv")
    if genes != test_genes:
        raise ValueError("train and independent files list different probes")
    return genes, train, test


def golub_preprocess(raw: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """NumPy twin of the in-graph ``GolubPreprocess`` layer (used to fit the scaler and PCA)."""
    logged = np.log10(np.clip(raw, FLOOR, CEILING)) * keep
    centred = (logged - logged.sum(axis=1, keepdims=True) / keep.sum()) * keep
    std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / keep.sum())
    return centred / np.maximum(std, 1e-6)


def variation_filter(raw: np.ndarray) -> np.ndarray:
    """Probes that vary on the training samples (max/min > 5 and max - min > 500 after flooring)."""
    clipped = np.clip(raw, FLOOR, CEILING)
    high, low = clipped.max(axis=0), clipped.min(axis=0)
    return (high / low > MIN_FOLD_CHANGE) & (high - low > MIN_RANGE)
