"""OncoServe's shared Lambda runtime: what every function does, written once.

Handlers import from the package root only::

    from oncoserve_runtime import ModelHandle, Route, build_lambda_handler
"""

from .errors import (
    ApiError,
    BadRequestError,
    MethodNotAllowedError,
    ModelUnavailableError,
    NotFoundError,
    PayloadTooLargeError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
    UpstreamFetchError,
)
from .explain import cam_overlay, normalise_cam
from .fetch import fetch_url, is_public_address, plan_fetch
from . import error_codes, response_schemas
from .handler import build_lambda_handler
from .heatmaps import colour_ramp, overlay_png_base64
from .images import decode_image, to_grey_rgb
from .inputs import (
    DICOM_MEDIA_TYPES,
    EXPRESSION_REQUEST_SCHEMA,
    FRAME_SCHEMA,
    ExpressionProfile,
    ScanImage,
    expression_vector,
    image_from_body,
    image_request_schema,
    scan_from_body,
)
from .model import ModelBundle, ModelHandle, sha256_of
from .observability import logger, metrics, tracer
from .predictions import binary_prediction, probabilities_by_label
from .preprocessing import ImagePreprocessing
from .requests import parse_body, parse_json_body, validate_body
from .routes import Route

__all__ = [
    "ApiError",
    "BadRequestError",
    "DICOM_MEDIA_TYPES",
    "EXPRESSION_REQUEST_SCHEMA",
    "ExpressionProfile",
    "FRAME_SCHEMA",
    "ImagePreprocessing",
    "MethodNotAllowedError",
    "ModelBundle",
    "ModelHandle",
    "ModelUnavailableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "Route",
    "ScanImage",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "UpstreamFetchError",
    "binary_prediction",
    "build_lambda_handler",
    "cam_overlay",
    "colour_ramp",
    "decode_image",
    "error_codes",
    "expression_vector",
    "fetch_url",
    "image_from_body",
    "image_request_schema",
    "is_public_address",
    "logger",
    "metrics",
    "normalise_cam",
    "overlay_png_base64",
    "parse_body",
    "parse_json_body",
    "plan_fetch",
    "probabilities_by_label",
    "response_schemas",
    "scan_from_body",
    "sha256_of",
    "to_grey_rgb",
    "tracer",
    "validate_body",
]
