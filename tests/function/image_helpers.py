"""Helpers for function tests of image models: post dataset files through a handler."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from local.events import json_event


def split_rows(shared_data: Path, task: str, split: str = "test"):
    """The manifest rows of one split of ``task`` (a pandas DataFrame)."""
    import pandas as pd

    manifest = pd.read_csv(shared_data / task / "manifest.csv")
    return manifest[manifest["split"] == split]


def post_file(app: Any, route: str, path: Path, context: Any, **extra: Any) -> tuple[int, dict[str, Any]]:
    """Send one image file, base64-encoded as a client would, through ``app.lambda_handler``."""
    body = {"image": base64.b64encode(path.read_bytes()).decode("ascii"), **extra}
    response = app.lambda_handler(json_event(route, body), context)
    return response["statusCode"], json.loads(response["body"])


def confusion(labels: list[int], predicted: list[int]) -> dict[str, int]:
    pairs = list(zip(labels, predicted))
    return {"tp": pairs.count((1, 1)), "fn": pairs.count((1, 0)), "fp": pairs.count((0, 1)), "tn": pairs.count((0, 0))}


def close_counts(got: dict[str, int], reported: dict[str, int], tolerance: int = 1) -> bool:
    """Equal up to ``tolerance`` images per cell (a probability sitting on the threshold may flip
    with thread scheduling in XNNPACK; more than that is a real regression)."""
    return all(abs(got[k] - reported[k]) <= tolerance for k in ("tp", "fn", "fp", "tn"))
