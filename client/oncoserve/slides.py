"""A whole slide scored in chunks (bands of tile rows), one request each, and the answers merged
into the one answer a single request gives: counts and areas add up, the grids interleave, the
label and probabilities are those of the most suspicious tile, the top regions the best of all."""

from __future__ import annotations

from typing import Any

TOP_REGIONS = 10


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
        **{key: first[key] for key in ("task", "model", "threshold", "slide") if key in first},
        "label": "idc" if tiles["idc_positive"] else "non_idc",
        "probabilities": {"non_idc": 1.0 - worst, "idc": worst},
        "grid": {"rows": rows, "cols": cols, "tile": first["grid"]["tile"], "band": [0, rows], "probabilities": grid},
        "tiles": tiles,
        "tissue_area_mm2": round(sum(a["tissue_area_mm2"] for a in answers), 4),
        "idc_area_mm2": round(sum(a["idc_area_mm2"] for a in answers), 4),
        "idc_fraction_of_tissue": tiles["idc_positive"] / tiles["scored"] if tiles["scored"] else 0.0,
        "top_regions": regions,
        "chunks": len(answers),
        "elapsed_ms": max(a["elapsed_ms"] for a in answers),
    }
