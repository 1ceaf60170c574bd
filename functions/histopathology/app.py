"""POST /histopathology/predict — one 50x50 H&E patch → IDC or not.
POST /histopathology/region — a larger H&E image → grid of p(IDC), IDC area fraction, heatmap PNG.
POST /histopathology/slide — a whole-slide image in the input bucket → its IDC map (slide_route.py).

Body: ``{"image": "<base64 PNG/JPEG>"}`` or ``{"url": "https://…"}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from region import map_tiles, run_tiles, tile_probabilities, tile_region, tile_scores
from slide_merge import merge_slide_chunks
from slide_route import SLIDE_ANSWER, SLIDE_SCHEMA, predict_slide

from oncoserve_runtime import (
    BinaryOutput,
    ImagePreprocessing,
    ModelBundle,
    ModelHandle,
    Route,
    UnprocessableEntityError,
    binary_prediction,
    build_lambda_handler,
    contract,
    error_codes,
    guard,
    region_guard,
    with_ood,
    image_from_body,
    image_request_schema,
    overlay_png_base64,
    response_schemas,
)



@dataclass(frozen=True, kw_only=True)
class RegionTiling:
    """How /histopathology/region cuts an image into patch-sized tiles."""

    tile: int
    stride: int
    min_edge_tile: int
    background: str
    edge: str


@dataclass(frozen=True, kw_only=True)
class HistopathologyOutput(BinaryOutput):
    region: RegionTiling


MODEL = ModelHandle(Path(__file__).parent / "model",
                    contract.contract_type("histopathology", "image", HistopathologyOutput))
MODEL.warm()

MAX_PATCH_SIDE = 100  # a "patch" bigger than this belongs on /region, not squashed to 50x50


def predict_patch(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    image = image_from_body(body)
    if max(image.size) > MAX_PATCH_SIDE:
        raise UnprocessableEntityError(
            "image_too_large_for_patch",
            f"A patch is ~50x50 px; this image is {image.width}x{image.height}. POST it to /histopathology/region.",
        )
    outputs = model.run(ImagePreprocessing.for_model(model).to_array(image))
    ood = guard(model, outputs, body)
    return with_ood(binary_prediction(model, model.class_output(outputs)[0]), ood)


def predict_region(body: dict[str, Any], model: ModelBundle) -> dict[str, Any]:
    started = time.perf_counter()
    image = image_from_body(body)
    spec = model.contract.output.region
    preprocessing = ImagePreprocessing.for_model(model)
    grid = tile_region(image, preprocessing, tile=spec.tile, min_edge_tile=spec.min_edge_tile)
    outputs = run_tiles(model.run, grid.tiles)
    # The image as a whole first: a dermoscopy photo's tiles are each only "atypical" H&E, together not H&E.
    ood = region_guard(model, tile_scores(model, outputs), body)
    p, flags = tile_probabilities(model, outputs, body)
    threshold = model.contract.output.threshold
    tiles = map_tiles(grid.cells, p, flags, (grid.rows, grid.cols), threshold)
    return with_ood({
        **tiles.label_and_probabilities(),
        "threshold": threshold,
        "grid": {"rows": grid.rows, "cols": grid.cols, "tile": spec.tile, "stride": spec.stride,
                 "probabilities": tiles.grid_values()},
        "tiles": {"scored": len(tiles.scored), "idc_positive": tiles.positive, "background": grid.background, "edge_slivers": grid.slivers,
                  "out_of_distribution": tiles.out_of_distribution, "atypical": tiles.atypical},
        "idc_area_fraction": tiles.idc_fraction,
        "heatmap_png": overlay_png_base64(image, tiles.heat, max_side=768),
        "elapsed_ms": round((time.perf_counter() - started) * 1000.0, 1),
    }, ood)


LABELS = ["non_idc", "idc"]
_COUNT = {"type": "integer", "minimum": 0}
PATCH_ANSWER = response_schemas.binary_answer("histopathology", LABELS, "IDC or not for one ~50x50 H&E patch.")
REGION_ANSWER = response_schemas.answer("histopathology", {
    "label": response_schemas.label(LABELS, "idc when any tissue tile reaches the threshold."),
    "probabilities": response_schemas.probabilities(LABELS, "Those of the most suspicious tile."),
    "threshold": response_schemas.THRESHOLD,
    "grid": {"type": "object", "description": "p(IDC) per tile, row-major; null where a tile was not scored.",
             "properties": {"rows": _COUNT, "cols": _COUNT, "tile": _COUNT, "stride": _COUNT,
                            "probabilities": {"type": "array", "items": {"type": "array", "items": {
                                "anyOf": [response_schemas.PROBABILITY, {"type": "null"}]}}}},
             "required": ["rows", "cols", "tile", "stride", "probabilities"], "additionalProperties": False},
    "tiles": {"type": "object", "properties": {
        "scored": _COUNT, "idc_positive": _COUNT, "background": _COUNT, "edge_slivers": _COUNT,
        "out_of_distribution": {**_COUNT, "description": "Tissue tiles above the guard's refusal threshold: left blank "
                                                         "and unscored (scored, and counted, with \"ood\": \"report\")."},
        "atypical": {**_COUNT, "description": "Tiles scored but flagged atypical."}},
              "required": ["scored", "idc_positive", "background", "edge_slivers", "out_of_distribution", "atypical"],
              "additionalProperties": False},
    "idc_area_fraction": response_schemas.PROBABILITY,
    "heatmap_png": response_schemas.BASE64_PNG,
    "elapsed_ms": {"type": "number", "minimum": 0},
    "ood": response_schemas.REGION_OOD,
}, ["label", "probabilities", "threshold", "grid", "tiles", "idc_area_fraction", "heatmap_png", "elapsed_ms"],
    "A p(IDC) grid over the region's tissue tiles, the IDC area fraction and a heatmap PNG.")

lambda_handler = build_lambda_handler("histopathology", MODEL, [
    Route("/histopathology/predict", image_request_schema(), predict_patch, response=PATCH_ANSWER,
          errors=(*error_codes.IMAGE, *error_codes.GUARDED, "image_too_large_for_patch"), summary="IDC or not for one 50x50 H&E patch"),
    Route("/histopathology/region", image_request_schema(), predict_region, response=REGION_ANSWER,
          errors=(*error_codes.IMAGE, *error_codes.GUARDED), summary="A larger H&E region: p(IDC) grid, IDC area fraction, heatmap",
          job_chunk_size=(4, 8)),  # a 2048² region is 0.9 s on two vCPUs (1.6 s on one): 8 stay inside the 29 s timeout
    Route("/histopathology/slide", SLIDE_SCHEMA, predict_slide, response=SLIDE_ANSWER,
          errors=(*error_codes.S3, *error_codes.SLIDE, *error_codes.GUARDED), merge_chunks=merge_slide_chunks,
          summary="A whole-slide image (pyramidal TIFF) in the input bucket: the IDC map of its tissue"),
])
