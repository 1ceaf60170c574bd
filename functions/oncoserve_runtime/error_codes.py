"""Every error ``code`` the functions answer, with its HTTP status and what it means.

This is the catalogue that ``openapi.yaml`` publishes: each route lists the groups it can answer
(``Route.errors``), and a unit test checks that every code raised anywhere in ``functions/`` is
here with the status of the exception that raises it.
"""

from __future__ import annotations

from typing import NamedTuple


class ErrorCode(NamedTuple):
    status: int
    meaning: str


CATALOGUE: dict[str, ErrorCode] = {
    # The body itself
    "missing_body": ErrorCode(400, "The request has no body."),
    "invalid_body_encoding": ErrorCode(400, "The body is not text, or isBase64Encoded is set on a body that is not base64."),
    "invalid_json": ErrorCode(400, "The body is not valid JSON (or is nested too deeply)."),
    "payload_too_large": ErrorCode(413, "The body is over 6 MB, Lambda's synchronous payload limit."),
    "non_finite_number": ErrorCode(422, "NaN or Infinity in the body: they are not JSON numbers."),
    "body_not_object": ErrorCode(422, "The body is JSON but not an object."),
    "invalid_request": ErrorCode(422, "The body breaks the route's schema; details name the field and rule."),
    "unsupported_media_type": ErrorCode(415, "A raw file body of a media type this route does not take."),
    # Images, inline or fetched
    "invalid_base64": ErrorCode(400, "'image' is not valid base64."),
    "image_too_large": ErrorCode(413, "The image is over its byte or pixel cap."),
    "image_too_small": ErrorCode(422, "The image is smaller than the model's minimum side."),
    "not_an_image": ErrorCode(415, "The bytes are not an image file."),
    "unsupported_image_format": ErrorCode(415, "An image format other than PNG, JPEG (or DICOM where taken)."),
    "corrupt_image": ErrorCode(422, "A PNG or JPEG that cannot be decoded (truncated, damaged)."),
    "url_not_allowed": ErrorCode(422, "The URL is refused before any connection: not http(s), or a private, "
                                      "loopback, link-local or metadata address."),
    "url_unreachable": ErrorCode(502, "The URL's host could not be resolved or connected to."),
    "url_timeout": ErrorCode(502, "The URL did not answer in time."),
    "url_fetch_failed": ErrorCode(502, "The URL answered with a non-2xx status."),
    "url_too_many_redirects": ErrorCode(502, "The URL redirected too many times."),
    "url_content_too_large": ErrorCode(413, "The URL's content is over the image byte cap."),
    # Images in the input bucket, and uploads to it
    "s3_access_denied": ErrorCode(403, "A bucket other than the deployment's input bucket, or S3 refused the function's read."),
    "s3_object_not_found": ErrorCode(422, "No such key in the input bucket (an upload that never arrived, or has expired)."),
    "s3_object_too_large": ErrorCode(413, "The object is over the 64 MiB cap of an S3 input."),
    "s3_unavailable": ErrorCode(502, "S3 did not answer, or failed, the read."),
    "s3_not_configured": ErrorCode(503, "The deployment has no input bucket (ONCOSERVE_INPUT_BUCKET)."),
    # Whole-slide images
    "not_a_slide": ErrorCode(415, "Not a pyramidal TIFF, or tiles compressed with a codec not installed here."),
    "slide_without_mpp": ErrorCode(422, "The slide states no microns per pixel and the request gave no 'mpp'."),
    "slide_too_coarse": ErrorCode(422, "Level 0 is coarser than the model's 4 µm/px: it would have to be upsampled."),
    "slide_too_large": ErrorCode(413, "More tissue tiles than one request scores, or no pyramid level near 4 µm/px."),
    # Jobs (batches and slides in parts)
    "job_not_found": ErrorCode(404, "No job with that id on this function (or it has expired with the bucket's lifecycle rule)."),
    "too_many_job_items": ErrorCode(413, "More objects than one job covers (10,000); split the prefix or the keys."),
    "no_job_inputs": ErrorCode(422, "No object under the job's prefix in the input bucket."),
    "job_start_failed": ErrorCode(502, "Lambda did not take the job's invocations; submit it again (a partly started job expires)."),
    # DICOM
    "corrupt_dicom": ErrorCode(422, "A DICOM file that cannot be read."),
    "dicom_without_pixel_data": ErrorCode(422, "A DICOM file with no image in it."),
    "unsupported_dicom_image": ErrorCode(422, "A DICOM image this model cannot take (e.g. colour for brain)."),
    "unsupported_transfer_syntax": ErrorCode(415, "A DICOM compression the function cannot decode."),
    "frame_out_of_range": ErrorCode(422, "'frame' is beyond the file's frames."),
    "too_many_frames": ErrorCode(413, "A multi-frame DICOM file with more frames than the cap."),
    # What the model may answer
    "out_of_distribution": ErrorCode(422, "The input lies far outside the model's training data (details.ood has the "
                                          "score and threshold); send \"ood\": \"report\" for a flagged answer."),
    # Task-specific
    "modality_mismatch": ErrorCode(422, "'modality' disagrees with the DICOM file's Modality."),
    "image_too_large_for_patch": ErrorCode(422, "A patch route was sent a region; use /histopathology/region."),
    "unknown_genes": ErrorCode(422, "Gene ids that are not inputs of this model (details list them)."),
    "missing_genes": ErrorCode(422, "Fewer of the model's genes than it needs (details list them)."),
    "duplicate_genes": ErrorCode(422, "A gene given more than once."),
    "clinical_incomplete": ErrorCode(422, "More clinical values are unknown than the model imputes (details list them)."),
    # Routing and the function itself
    "unknown_route": ErrorCode(404, "No such route on this function (only seen when invoking a function directly)."),
    "method_not_allowed": ErrorCode(405, "The route exists for another method (only seen when invoking directly)."),
    "model_unavailable": ErrorCode(503, "The function has no valid model artifact; it refuses to serve."),
    "internal_error": ErrorCode(500, "A server fault; it has been logged. Never the client's doing."),
}

# Groups that routes combine in ``Route.errors``.
EVERY_ROUTE = ("model_unavailable", "internal_error")
JSON_BODY = ("missing_body", "invalid_body_encoding", "invalid_json", "payload_too_large", "non_finite_number",
             "body_not_object", "invalid_request", "unsupported_media_type")
S3 = ("s3_access_denied", "s3_object_not_found", "s3_unavailable", "s3_not_configured")
IMAGE = ("invalid_base64", "image_too_large", "image_too_small", "not_an_image", "unsupported_image_format",
         "corrupt_image", "url_not_allowed", "url_unreachable", "url_timeout", "url_fetch_failed",
         "url_too_many_redirects", "url_content_too_large", *S3, "s3_object_too_large")
SLIDE = ("not_a_slide", "slide_without_mpp", "slide_too_coarse", "slide_too_large", "image_too_small")
DICOM = ("corrupt_dicom", "dicom_without_pixel_data", "unsupported_dicom_image", "unsupported_transfer_syntax",
         "frame_out_of_range", "too_many_frames")
GUARDED = ("out_of_distribution",)
EXPRESSION = ("unknown_genes", "missing_genes", "duplicate_genes")
CLINICAL = ("clinical_incomplete",)
