"""A whole slide scored in chunks (bands of tile rows), one invocation each, and the answers merged
into the one answer a single request gives: counts and areas add up, the grids interleave, the
label and probabilities are those of the most suspicious tile, the top regions the best of all.
A slide job (``POST /histopathology/jobs`` with ``"route": "slide"``) merges its parts with it; the
merged answer's heatmap is the grid alone (the parts carry no slide pixels)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from slide_route import TOP_REGIONS

from oncoserve_runtime import overlay_png_base64

MAP_CELL_PX = 8  # a merged map has no slide pixels under it: each tile a block on white


def merge_slide_chunks(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """One slide answer from the answers of its chunks (any order; together they cover the slide)."""
    if not answers:
        raise ValueError("no chunk answers to merge")
    answers = sorted(answers, key=lambda a: a["grid"]["band"][0])
    first = answers[0]
    rows, cols = first["grid"]["rows"], first["grid"]["cols"]
    covered = sorted(tuple(a["grid"]["band"]) for a in answers)
    if covered[0][0] != 0 or covered[-1][1] != rows or any(a[1] != b[0] for a, b in zip(covered, covered[1:])):
        raise ValueError(f"the chunks' bands {covered} do not cover the slide's {rows} tile rows once")
    grid = [[None] * cols for _ in range(rows)]
    for answer in answers:
        start, stop = answer["grid"]["band"]
        for row in range(start, stop):
            grid[row] = answer["grid"]["probabilities"][row]
    tiles = {name: sum(a["tiles"][name] for a in answers) for name in first["tiles"]}
    worst = max(a["probabilities"]["idc"] for a in answers)
    regions = sorted((region for a in answers for region in a["top_regions"]),
                     key=lambda r: (-r["idc"], r["y"], r["x"]))[:TOP_REGIONS]
    return {
        **{key: first[key] for key in ("threshold", "slide")},
        "label": "idc" if tiles["idc_positive"] else "non_idc",
        "probabilities": {"non_idc": 1.0 - worst, "idc": worst},
        "grid": {"rows": rows, "cols": cols, "tile": first["grid"]["tile"], "band": [0, rows], "probabilities": grid},
        "tiles": tiles,
        "tissue_area_mm2": round(sum(a["tissue_area_mm2"] for a in answers), 4),
        "idc_area_mm2": round(sum(a["idc_area_mm2"] for a in answers), 4),
        "idc_fraction_of_tissue": tiles["idc_positive"] / tiles["scored"] if tiles["scored"] else 0.0,
        "top_regions": regions,
        "heatmap_png": _map_png(grid),
        "chunks": len(answers),
        "elapsed_ms": max(a["elapsed_ms"] for a in answers),
    }


def _map_png(grid: list[list[float | None]]) -> str:
    """The p(IDC) grid as a PNG: the parts carry no pixels, so the map stands on white."""
    heat = np.array([[np.nan if v is None else v for v in row] for row in grid], dtype=np.float64).reshape(len(grid), -1)
    canvas = Image.new("RGB", (max(1, heat.shape[1] * MAP_CELL_PX), max(1, heat.shape[0] * MAP_CELL_PX)), "white")
    return overlay_png_base64(canvas, heat, max_side=1024, alpha=1.0)
