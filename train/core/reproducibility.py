"""Seeds and library versions: what makes a training run repeatable, and what model.json records of it."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and Keras (and its backend); ask TF for deterministic kernels."""
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed)
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("keras", "tensorflow", "tensorflow-cpu", "ai-edge-litert", "numpy", "scikit-learn"):
        try:
            found[package.replace("-", "_")] = version(package)
        except PackageNotFoundError:
            continue
    if "tensorflow_cpu" in found:
        found.setdefault("tensorflow", found.pop("tensorflow_cpu"))
    return found
