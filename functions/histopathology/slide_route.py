"""POST /histopathology/slide — a whole-slide image in the input bucket → the IDC map of its tissue.

The slide is read from S3 by byte ranges at the model's 4 µm/px (see :mod:`slides`), cut into the
model's 50x50 tiles; tiles without tissue (glass) are never scored; tissue tiles go through the
patch model and its guard in batches, as a region's do. One request scores up to
``MAX_SLIDE_TILES`` tissue tiles, what one vCPU does well inside API Gateway's 29 s; a larger
slide goes in chunks (bands of tile rows), one request each, side by side on Lambda's own
concurrency, and their answers add up (the client merges them: ``Client.slide(workers=N)``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from PIL import Image
from region import map_tiles, run_tiles, tile_probabilities
from slides import MAX_MPP, MIN_MPP, MODEL_MPP, SlideImage, read_slide, tissue_fraction

from oncoserve_runtime import ModelBundle, PayloadTooLargeError, UnprocessableEntityError, overlay_png_base64, response_schemas
from oncoserve_runtime.ood import POLICY_SCHEMA as OOD_POLICY_SCHEMA
from oncoserve_runtime.s3_objects import S3_REFERENCE_SCHEMA, open_object

MAX_SLIDE_TILES = 15_000  # ~18 s at the ~850 tiles/s `python -m bench.slide` measured on one thread
MIN_TISSUE_FRACTION = 0.25  # of a tile's pixels, for it to be scored
TOP_REGIONS = 10
MAX_CHUNKS = 256

SLIDE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "s3": S3_REFERENCE_SCHEMA,
        "mpp": {"type": "number", "minimum": MIN_MPP, "maximum": MAX_MPP,
                "description": "Level 0's microns per pixel, for a slide that does not state its own."},
        "ood": OOD_POLICY_SCHEMA,
        "chunk": {"type": "object", "description": "Score only band `index` of `count` equal bands of tile rows, so "
                  "that concurrent requests share a slide; their answers add up to the whole slide's.",
                  "properties": {"index": {"type": "integer", "minimum": 0}, "count": {"type": "integer", "minimum": 1,
                                                                                   "maximum": MAX_CHUNKS}},
                  "required": ["index", "count"], "additionalProperties": False},
    },
    "required": ["s3"],
    "additionalProperties": False,
}


def chunk_rows(rows: int, chunk: dict[str, int] | None) -> range:
    """The tile rows of band ``index`` of ``count`` (all rows without a chunk)."""
    if not chunk:
        return range(rows)
    if chunk["index"] >= chunk["count"]:
        raise UnprocessableEntityError("invalid_request", "body.chunk.index must be smaller than body.chunk.count",
                                       details={"field": "body.chunk.index", "rule": "less_than_count"})
    index, count = int(chunk["index"]), int(chunk["count"])  # JSON Schema's "integer" takes 2.0 too
    first, last = (rows * index) // count, (rows * (index + 1)) // count
    return range(first, last)


def tissue_tiles(pixels: np.ndarray, tile: int, first_row: int = 0) -> tuple[np.ndarray, list[tuple[int, int]], int]:
    """(tissue tiles, their (row, col) on the slide's grid, glass tiles) of the whole tiles of
    ``pixels``, a band of the slide starting at tile row ``first_row``."""
    fraction = tissue_fraction(pixels, tile)
    cells = [(int(r) + first_row, int(c)) for r, c in np.argwhere(fraction >= MIN_TISSUE_FRACTION)]
    if len(cells) > MAX_SLIDE_TILES:
        raise PayloadTooLargeError("slide_too_large", f"The slide has {len(cells)} tissue tiles; one request scores "
                                   f"at most {MAX_SLIDE_TILES}: send it in chunks (body.chunk).")
    tiles = np.stack([pixels[(r - first_row) * tile:(r - first_row + 1) * tile, c * tile:(c + 1) * tile]
                      for r, c in cells]).astype(np.float32) if cells else np.zeros((0, tile, tile, 3), np.float32)
    return tiles, cells, fraction.size - len(cells)


def predict_slide(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    started = time.perf_counter()
    tile = model.contract.output.region.tile
    with open_object(body["s3"]) as handle:
        slide = read_slide(handle, tile=tile, mpp=body.get("mpp"), band=lambda rows: chunk_rows(rows, body.get("chunk")))
    tiles, cells, glass = tissue_tiles(slide.pixels, tile, slide.band.start)
    p, flags = tile_probabilities(model, run_tiles(model.run, tiles), body)
    threshold = model.contract.output.threshold
    mapped = map_tiles(cells, p, flags, (slide.rows, slide.cols), threshold)
    tile_mm2 = (tile * MODEL_MPP / 1000.0) ** 2
    answer = {
        **mapped.label_and_probabilities(),
        "threshold": threshold,
        "slide": _slide_info(slide),
        "grid": {"rows": slide.rows, "cols": slide.cols, "tile": tile, "band": [slide.band.start, slide.band.stop],
                 "probabilities": mapped.grid_values()},
        "tiles": {"tissue": len(cells), "glass": glass, "scored": len(mapped.scored), "idc_positive": mapped.positive,
                  "out_of_distribution": mapped.out_of_distribution, "atypical": mapped.atypical},
        "tissue_area_mm2": round(len(cells) * tile_mm2, 4),
        "idc_area_mm2": round(mapped.positive * tile_mm2, 4),
        "idc_fraction_of_tissue": mapped.idc_fraction,
        "top_regions": _top_regions(mapped.heat, threshold, tile * MODEL_MPP / slide.level0_mpp),
    }
    if not body.get("chunk"):  # a chunk's map is merged by whoever sent the chunks (the grid)
        answer["heatmap_png"] = overlay_png_base64(Image.fromarray(slide.pixels), mapped.heat, max_side=1024)
    answer["elapsed_ms"] = round((time.perf_counter() - started) * 1000.0, 1)
    return answer


def _slide_info(slide: SlideImage) -> dict[str, Any]:
    return {"width": slide.level0_size[0], "height": slide.level0_size[1], "mpp": round(slide.level0_mpp, 4),
            "mpp_source": slide.mpp_source, "level": slide.level, "level_mpp": round(slide.level_mpp, 4),
            "model_mpp": MODEL_MPP}


def _top_regions(heat: np.ndarray, threshold: float, tile_level0: float) -> list[dict[str, Any]]:
    """The most suspicious IDC tiles, as boxes in level-0 pixels (what a viewer navigates by); ties
    in order of (y, x), so that merged chunks list the same regions as one request."""
    rows, cols = np.nonzero(np.nan_to_num(heat, nan=-1.0) >= threshold)
    ranked = sorted((-round(float(heat[r, c]), 4), int(r), int(c)) for r, c in zip(rows, cols))[:TOP_REGIONS]
    return [{"x": round(c * tile_level0), "y": round(r * tile_level0), "width": round(tile_level0),
             "height": round(tile_level0), "idc": -negative} for negative, r, c in ranked]


_COUNT = {"type": "integer", "minimum": 0}
_AREA = {"type": "number", "minimum": 0}
SLIDE_ANSWER = response_schemas.answer("histopathology", {
    "label": response_schemas.label(["non_idc", "idc"], "idc when any tissue tile reaches the threshold."),
    "probabilities": response_schemas.probabilities(["non_idc", "idc"], "Those of the most suspicious tile."),
    "threshold": response_schemas.THRESHOLD,
    "slide": {"type": "object", "description": "Level 0's size and resolution, and the level that was read.",
              "properties": {"width": _COUNT, "height": _COUNT, "mpp": _AREA, "mpp_source": {"enum": ["slide", "request"]},
                             "level": _COUNT, "level_mpp": _AREA, "model_mpp": _AREA},
              "required": ["width", "height", "mpp", "mpp_source", "level", "level_mpp", "model_mpp"]},
    "grid": {"type": "object", "description": "p(IDC) per tile at 4 µm/px, row-major; null where not scored (glass, "
             "refused, or outside the chunk's band of rows [first, last)).",
             "properties": {"rows": _COUNT, "cols": _COUNT, "tile": _COUNT,
                            "band": {"type": "array", "items": _COUNT, "minItems": 2, "maxItems": 2},
                            "probabilities": {"type": "array", "items": {"type": "array", "items": {
                                "anyOf": [response_schemas.PROBABILITY, {"type": "null"}]}}}},
             "required": ["rows", "cols", "tile", "band", "probabilities"]},
    "tiles": {"type": "object", "properties": {name: _COUNT for name in (
        "tissue", "glass", "scored", "idc_positive", "out_of_distribution", "atypical")},
              "required": ["tissue", "glass", "scored", "idc_positive", "out_of_distribution", "atypical"]},
    "tissue_area_mm2": _AREA, "idc_area_mm2": _AREA, "idc_fraction_of_tissue": response_schemas.PROBABILITY,
    "top_regions": {"type": "array", "description": "The most suspicious IDC tiles, boxes in level-0 pixels.",
                    "items": {"type": "object", "properties": {"x": _COUNT, "y": _COUNT, "width": _COUNT,
                                                               "height": _COUNT, "idc": response_schemas.PROBABILITY},
                              "required": ["x", "y", "width", "height", "idc"]}},
    "heatmap_png": {**response_schemas.BASE64_PNG, "description": "The map over the slide (not for a chunk)."},
    "elapsed_ms": _AREA,
}, ["label", "probabilities", "threshold", "slide", "grid", "tiles", "tissue_area_mm2", "idc_area_mm2", "idc_fraction_of_tissue",
    "top_regions", "elapsed_ms"], "The IDC map of a whole slide's tissue at the model's 4 µm/px.")
