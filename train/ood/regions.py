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


def region_tensor(ood: dict[str, Any]) -> str:
    """The score output an image is judged by as a whole (the region block's own, else the guard's)."""
    return ood["region"].get("tensor") or ood["tensor"]


def image_region_scores(content: bytes, metadata: dict[str, Any], images: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each PIL image's tissue tiles' (scores as a whole image judges them, their own scores) as the
    region route computes them (empty: no tissue)."""
    from oncoserve_runtime import ImagePreprocessing

    from train.core import tflite_outputs

    tiler = serving_tiler()
    preprocessing = ImagePreprocessing.from_metadata(metadata["preprocessing"]["in_runtime"])
    spec = metadata["output"]["region"]
    grids = [tiler.tile_region(image, preprocessing, tile=spec["tile"], min_edge_tile=spec["min_edge_tile"]).tiles
             for image in images]
    tiles = [g for g in grids if len(g)]
    if not tiles:
        return [(np.zeros(0), np.zeros(0)) for _ in grids]
    outputs = tflite_outputs(content, np.concatenate(tiles), per_call=256)
    cuts = np.cumsum([len(g) for g in grids])[:-1]
    ood = metadata["ood"]
    return list(zip(np.split(outputs[region_tensor(ood)], cuts), np.split(outputs[ood["tensor"]], cuts)))


def region_refused(scores: tuple[np.ndarray, np.ndarray], ood: dict[str, Any]) -> tuple[bool, bool]:
    """(refused, refused or atypical) of an image with these tissue tiles' (region, own) scores, as the
    region route decides: the image as a whole (``region_assessment``; no tissue tile is out), or every
    tile above the tile threshold."""
    from types import SimpleNamespace

    from oncoserve_runtime.ood import region_assessment

    region_scores, tile_scores = scores
    status = region_assessment(SimpleNamespace(**ood["region"]), region_scores)["status"]
    every_tile = bool((np.nan_to_num(tile_scores, nan=np.inf) > ood["refuse_threshold"]).all())
    refused = status == "out_of_distribution" or every_tile
    return refused, refused or status == "atypical"


def region_summary(scores: list[tuple[np.ndarray, np.ndarray]], ood: dict[str, Any], in_medians: np.ndarray) -> dict[str, Any]:
    """A family sent to the region route (each image's ``image_region_scores``): refused (an image with no
    tissue tile is), flagged, how many had no tissue tile, and the AUROC of the median tile score (the
    region score) of those that had, against test regions'."""
    from train.ood.evaluate import auroc

    with_tissue = [region for region, _ in scores if len(region)]
    decisions = np.array([region_refused(s, ood) for s in scores]).reshape(-1, 2)
    medians = np.array([np.median(np.nan_to_num(s, nan=np.inf)) for s in with_tissue])
    n = len(scores)
    return {"n": n, "no_tissue": n - len(with_tissue), "refused": float(decisions[:, 0].sum() / n),
            "flagged": float(decisions[:, 1].sum() / n), "score_median": float(np.median(medians)) if len(medians) else None,
            "auroc": auroc(in_medians, np.minimum(medians, 1e30)) if len(medians) else None}
