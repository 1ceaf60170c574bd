"""
## The guard on tiled images, measured through the serving tiler

Images sent whole are cut into tiles by the function's own code (``functions/histopathology/region.py``:
tile size, edges, background) and judged by the runtime's own rule (``oncoserve_runtime.ood.region_assessment``);
the dataset's patches are kept or left out as background by the same rule. Validation and test regions
are a patient's spatially nearest tissue patches (``core.ood.neighbour_region_medians``).
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from typing import Any

import numpy as np


@cache
def serving_tiler():
    """``functions/histopathology/region.py``, imported from its file (the function's folder is no package)."""
    from train.core import function_dir

    path = function_dir("histopathology") / "region.py"
    spec = importlib.util.spec_from_file_location("oncoserve_histopathology_region", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def tissue(patches: np.ndarray) -> np.ndarray:
    """Which (n, side, side, 3) patches the region route would score (not background by its rule), in one
    pass: the patches stacked into one column of tiles for the route's own ``background_tiles``."""
    n, side = patches.shape[:2]
    column = patches.astype(np.uint8).reshape(n * side, side, 3)
    return ~serving_tiler().background_tiles(column, side)[:, 0]


def image_region_scores(content: bytes, metadata: dict[str, Any], images: list) -> list[np.ndarray]:
    """Each PIL image's tissue-tile scores as the region route computes them (empty: no tissue)."""
    from oncoserve_runtime import ImagePreprocessing

    from train.core import tflite_outputs

    tiler = serving_tiler()
    preprocessing = ImagePreprocessing.from_metadata(metadata["preprocessing"]["in_runtime"])
    spec = metadata["output"]["region"]
    grids = [tiler.tile_region(image, preprocessing, tile=spec["tile"], min_edge_tile=spec["min_edge_tile"]).tiles
             for image in images]
    tiles = [g for g in grids if len(g)]
    if not tiles:
        return [np.zeros(0) for _ in grids]
    scores = tflite_outputs(content, np.concatenate(tiles), per_call=256)["ood_score"]
    return np.split(scores, np.cumsum([len(g) for g in grids])[:-1])


def region_refused(tile_scores: np.ndarray, ood: dict[str, Any]) -> tuple[bool, bool]:
    """(refused, refused or atypical) of an image with these tissue-tile scores, as the region route
    decides: the image as a whole (``region_assessment``; no tissue tile is out), or every tile above the
    tile threshold."""
    from types import SimpleNamespace

    from oncoserve_runtime.ood import region_assessment

    status = region_assessment(SimpleNamespace(**ood["region"]), tile_scores)["status"]
    every_tile = bool((np.nan_to_num(tile_scores, nan=np.inf) > ood["refuse_threshold"]).all())
    refused = status == "out_of_distribution" or every_tile
    return refused, refused or status == "atypical"


def region_summary(tile_scores: list[np.ndarray], ood: dict[str, Any], in_medians: np.ndarray) -> dict[str, Any]:
    """A family sent to the region route: refused (an image with no tissue tile is), flagged, how many had
    no tissue tile, and the AUROC of the median tile score of those that had, against test regions'."""
    from train.ood.evaluate import auroc

    with_tissue = [s for s in tile_scores if len(s)]
    decisions = np.array([region_refused(s, ood) for s in tile_scores]).reshape(-1, 2)
    medians = np.array([np.median(np.nan_to_num(s, nan=np.inf)) for s in with_tissue])
    n = len(tile_scores)
    return {"n": n, "no_tissue": n - len(with_tissue), "refused": float(decisions[:, 0].sum() / n),
            "flagged": float(decisions[:, 1].sum() / n), "score_median": float(np.median(medians)) if len(medians) else None,
            "auroc": auroc(in_medians, np.minimum(medians, 1e30)) if len(medians) else None}
