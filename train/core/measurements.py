"""Runs measured by other commands that a model card cites, kept in ``train/<task>/measurements.yaml``
(figures with the command that printed them), so that experiment history is data, not code."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from train.core.paths import REPO_ROOT


@lru_cache(maxsize=None)
def measurements(task: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((REPO_ROOT / "train" / task / "measurements.yaml").read_text())
