"""OncoServe's shared Lambda runtime: what every function does, written once.

Handlers import from the package root only::

    from oncoserve_runtime import ModelHandle, Route, build_lambda_handler

Names load on first use (PEP 562), so ``from oncoserve_runtime.digests import sha256_of`` or
``oncoserve_runtime.contract`` work where Powertools and LiteRT are not installed (training, a GPU
machine) and a function's cold start imports only what it touches.
"""

from __future__ import annotations

import importlib
from typing import Any

# module -> the names it exports
_MODULE_EXPORTS: dict[str, str] = {
    "errors": "ApiError BadRequestError ForbiddenError MethodNotAllowedError ModelUnavailableError NotFoundError PayloadTooLargeError "
              "ServiceUnavailableError UnprocessableEntityError UnsupportedMediaTypeError UpstreamFetchError",
    "explain": "cam_overlay normalise_cam",
    "fetch": "fetch_url is_public_address plan_fetch",
    "handler": "build_lambda_handler",
    "heatmaps": "colour_ramp overlay_png_base64",
    "image_decoding": "decode_image to_grey_rgb",
    "inputs": "DICOM_MEDIA_TYPES EXPRESSION_REQUEST_SCHEMA expression_vector ExpressionProfile FRAME_SCHEMA "
              "image_from_body image_request_schema scan_from_body ScanImage",
    "model": "ModelBundle ModelHandle",
    "ood": "assess_rows guard region_assessment region_guard with_ood",
    "digests": "sha256_of",
    "observability": "logger metrics tracer",
    "predictions": "binary_prediction probabilities_by_label",
    "preprocessing": "ImagePreprocessing",
    "requests": "parse_body parse_json_body validate_body",
    "routes": "Route",
    "contract": "BinaryOutput",
}
_EXPORTS = {name: module for module, names in _MODULE_EXPORTS.items() for name in names.split()}
_SUBMODULES = ("contract", "error_codes", "ood", "response_schemas", "typed_json")

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
