"""Where things live: the data root (read, never copied), each function's folder, the build folder.

Data are read from ``ONCOSERVE_DATA_ROOT`` (default ``../shared/data`` beside the repository).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Quiet TensorFlow's C++ start-up chatter; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
BUILD_DIR = REPO_ROOT / "build"


def data_root() -> Path:
    """``ONCOSERVE_DATA_ROOT`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("ONCOSERVE_DATA_ROOT") or REPO_ROOT.parent / "shared" / "data").resolve()


def task_data_dir(task: str) -> Path:
    path = data_root() / task
    if not path.is_dir():
        raise FileNotFoundError(f"no data for {task!r} at {path}; set ONCOSERVE_DATA_ROOT")
    return path


def function_dir(task: str) -> Path:
    return FUNCTIONS_DIR / task


def build_dir(task: str) -> Path:
    path = BUILD_DIR / task
    path.mkdir(parents=True, exist_ok=True)
    return path


def export_saved_model(model: Any, task: str) -> Path:
    """The trained Keras model as a TF SavedModel in build/<task>/saved_model (git-ignored): the
    baseline `make bench` runs with TensorFlow and converts for ONNX Runtime."""
    path = build_dir(task) / "saved_model"
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path
