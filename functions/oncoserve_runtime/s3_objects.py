"""Inputs from S3 and uploads to it: ``{"s3": {"bucket": …, "key": …}}`` on every image route, and
presigned PUT URLs for files over the 6 MB request limit.

The function reads with its own role, and only from the stack's input bucket
(``ONCOSERVE_INPUT_BUCKET``): naming another bucket is refused before any call, so the API never
becomes a reader of whatever the role might reach. Uploads go to ``uploads/<route prefix>/`` of that bucket,
where a lifecycle rule deletes them (template.yaml). boto3 comes with Lambda's Python base image
and loads only for S3 requests; ``AWS_ENDPOINT_URL_S3`` points it at a local S3 stand-in in tests.
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator

from .errors import ForbiddenError, PayloadTooLargeError, ServiceUnavailableError, UnprocessableEntityError, UpstreamFetchError

MAX_OBJECT_BYTES = 64 * 1024 * 1024  # read whole: a 16 Mpx PNG is at most ~48 MB; the pixel cap still applies
MAX_UPLOAD_BYTES = 5 * 1024 ** 3  # S3's limit for one PUT: whole slides are read by range, not whole
PRESIGNED_EXPIRY_S = 300
UPLOAD_MEDIA_TYPES = {"image/png": ".png", "image/jpeg": ".jpg", "application/dicom": ".dcm", "image/tiff": ".tif"}
_TIMEOUT_S = 5.0

S3_REFERENCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An object in the deployment's input bucket (see POST /<task>/uploads).",
    "properties": {
        # S3's own bucket naming rules, so a typo is a 422 here rather than an S3 round trip.
        "bucket": {"type": "string", "pattern": "^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"},
        "key": {"type": "string", "minLength": 1, "maxLength": 1024},
    },
    "required": ["bucket", "key"],
    "additionalProperties": False,
}

UPLOAD_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "content_type": {"enum": sorted(UPLOAD_MEDIA_TYPES)},
        "bytes": {"type": "integer", "minimum": 1, "maximum": MAX_UPLOAD_BYTES,
                  "description": "The file's exact size: the URL is signed for it."},
    },
    "required": ["content_type", "bytes"],
    "additionalProperties": False,
}


def input_bucket() -> str:
    bucket = os.environ.get("ONCOSERVE_INPUT_BUCKET", "")
    if not bucket:
        raise ServiceUnavailableError("s3_not_configured", "This deployment has no input bucket; send the image inline or by URL.")
    return bucket


@lru_cache(maxsize=1)
def _client() -> Any:
    import boto3  # only S3 requests pay for the import
    from botocore.config import Config

    config = Config(signature_version="s3v4", connect_timeout=_TIMEOUT_S, read_timeout=_TIMEOUT_S,
                    retries={"max_attempts": 2, "mode": "standard"})
    return boto3.client("s3", config=config)


def _refusal(exc: Exception, bucket: str, key: str) -> Exception:
    """The API error for a failed S3 call: the client's problem (4xx) or S3's (502)."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NotFound"):
            return UnprocessableEntityError("s3_object_not_found", f"No object {key!r} in bucket {bucket!r}.")
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return ForbiddenError("s3_access_denied", f"The function may not use {key!r} in {bucket!r}.")
    return UpstreamFetchError("s3_unavailable", "S3 did not answer the read; try again.")


@contextmanager
def _as_api_errors(bucket: str, key: str) -> Iterator[None]:
    """Inside: a failed S3 call is raised as the API error it means (see :func:`_refusal`)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise _refusal(exc, bucket, key) from None


def only_input_bucket(bucket: str) -> str:
    """``bucket``, refused before any S3 call unless it is the input bucket."""
    if bucket != input_bucket():
        raise ForbiddenError("s3_access_denied", f"Only the deployment's input bucket can be read, not {bucket!r}.")
    return bucket


def _in_input_bucket(reference: dict[str, str]) -> tuple[str, str]:
    """(bucket, key), refused before any S3 call unless the bucket is the input bucket."""
    only_input_bucket(reference["bucket"])
    if len(reference["key"].encode("utf-8")) > 1024:  # S3 counts bytes; the schema can only count characters
        raise UnprocessableEntityError("invalid_request", "body.s3.key is over S3's 1,024 bytes",
                                       details={"field": "body.s3.key", "rule": "maxBytes"})
    return reference["bucket"], reference["key"]


def read_object(reference: dict[str, str], max_bytes: int | None = None) -> bytes:
    """The object's bytes, at most ``max_bytes`` (default :data:`MAX_OBJECT_BYTES`); only from the input bucket.

    Raises
    ------
    ForbiddenError
        ``s3_access_denied``: another bucket, or S3 refused the function's role.
    UnprocessableEntityError
        ``s3_object_not_found``.
    PayloadTooLargeError
        ``s3_object_too_large``.
    UpstreamFetchError
        ``s3_unavailable``: S3 could not be reached or failed.
    ServiceUnavailableError
        ``s3_not_configured``: the deployment has no input bucket.
    """
    bucket, key = _in_input_bucket(reference)
    max_bytes = max_bytes or MAX_OBJECT_BYTES
    with _as_api_errors(bucket, key):
        answer = _client().get_object(Bucket=bucket, Key=key)
        if answer["ContentLength"] > max_bytes:
            answer["Body"].close()
            raise PayloadTooLargeError("s3_object_too_large", f"The object is over {max_bytes} bytes.")
        data = answer["Body"].read(max_bytes + 1)
    if len(data) > max_bytes:  # S3 said one length and sent more: never hold more than the cap
        raise PayloadTooLargeError("s3_object_too_large", f"The object is over {max_bytes} bytes.")
    return data


class _RangedObject(io.RawIOBase):
    """A seekable file over one S3 object, read by byte ranges: a reader of a pyramidal slide
    fetches the directories and the tiles of one level, not the gigabytes of level 0."""

    def __init__(self, bucket: str, key: str, size: int) -> None:
        self._bucket, self._key, self._size, self._at = bucket, key, size, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._at

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._at = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._size}[whence] + offset
        return self._at

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), max(self._size - self._at, 0))
        if count == 0:
            return 0
        with _as_api_errors(self._bucket, self._key):
            answer = _client().get_object(Bucket=self._bucket, Key=self._key,
                                          Range=f"bytes={self._at}-{self._at + count - 1}")
            data = answer["Body"].read()
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)


def open_object(reference: dict[str, str], block_bytes: int = 1024 * 1024) -> io.BufferedReader:
    """The object as a seekable, buffered binary file, read from S3 by ranges of ``block_bytes``;
    only from the input bucket (errors as :func:`read_object`, besides the size cap)."""
    bucket, key = _in_input_bucket(reference)
    with _as_api_errors(bucket, key):
        size = _client().head_object(Bucket=bucket, Key=key)["ContentLength"]
    return io.BufferedReader(_RangedObject(bucket, key, size), buffer_size=block_bytes)


def presigned_upload(folder: str, content_type: str, size: int, *, slides: bool = False) -> dict[str, Any]:
    """Where to PUT a file of ``size`` bytes, and the ``s3`` reference to send afterwards. The URL
    signs the content type and length, so S3 refuses any other file; it expires in minutes. Only a
    function that reads slides (``slides``) takes TIFFs, and only they may exceed what a route reads
    whole (:data:`MAX_OBJECT_BYTES`): nobody stores 5 GiB a request that no route could read."""
    if content_type == "image/tiff" and not slides:
        raise UnprocessableEntityError("invalid_request", "body.content_type image/tiff is for whole slides "
                                       "(POST /histopathology/uploads)", details={"field": "body.content_type", "rule": "slides_only"})
    if content_type != "image/tiff" and size > MAX_OBJECT_BYTES:
        raise UnprocessableEntityError("invalid_request", f"body.bytes must be at most {MAX_OBJECT_BYTES} for {content_type}",
                                       details={"field": "body.bytes", "rule": "maximum"})
    bucket = input_bucket()
    key = f"uploads/{folder}/{uuid.uuid4().hex}{UPLOAD_MEDIA_TYPES[content_type]}"
    with _as_api_errors(bucket, key):  # e.g. no credentials in the environment
        url = _client().generate_presigned_url(
            "put_object", ExpiresIn=PRESIGNED_EXPIRY_S,
            Params={"Bucket": bucket, "Key": key, "ContentType": content_type, "ContentLength": size})
    return {
        "upload": {"url": url, "method": "PUT", "expires_in_s": PRESIGNED_EXPIRY_S,
                   "headers": {"Content-Type": content_type, "Content-Length": str(size)}},
        "s3": {"bucket": bucket, "key": key},
    }


def list_keys(reference: dict[str, str], limit: int) -> list[str]:
    """The keys under ``reference["prefix"]`` of the input bucket in S3's (lexicographic) order, without
    "folder" placeholders; at most ``limit`` + 1, so that a caller can tell "more than ``limit``"."""
    bucket, prefix = only_input_bucket(reference["bucket"]), reference.get("prefix") or ""
    keys: list[str] = []
    with _as_api_errors(bucket, prefix):
        for page in _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/")]
            if len(keys) > limit:
                return keys[: limit + 1]
    return keys


def put_json(key: str, value: Any) -> None:
    """Write ``value`` as a JSON object at ``key`` of the input bucket (the function's own records)."""
    bucket = input_bucket()
    with _as_api_errors(bucket, key):
        _client().put_object(Bucket=bucket, Key=key, ContentType="application/json",
                             Body=json.dumps(value, allow_nan=False, separators=(",", ":")).encode())


def get_json(key: str) -> Any | None:
    """The JSON object at ``key`` of the input bucket, or ``None`` when there is none."""
    try:
        data = read_object({"bucket": input_bucket(), "key": key})
    except UnprocessableEntityError:  # s3_object_not_found
        return None
    return json.loads(data)


def count_keys(prefix: str) -> int:
    """How many objects of the input bucket start with ``prefix``."""
    bucket, count = input_bucket(), 0
    with _as_api_errors(bucket, prefix):
        for page in _client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            count += page.get("KeyCount", 0)
    return count


def claim(key: str, owner: str, attempts: int = 3) -> bool:
    """Claim ``key`` of the input bucket for ``owner``: True when this call created it (S3's
    conditional write lets one writer create an object) or ``owner`` already holds it; False when
    another owner does."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = input_bucket()
    for attempt in range(attempts):
        try:
            _client().put_object(Bucket=bucket, Key=key, Body=owner.encode(), IfNoneMatch="*")
            return True
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "412"):
                return read_object({"bucket": bucket, "key": key}).decode() == owner
            if code != "ConditionalRequestConflict" or attempt == attempts - 1:  # 409: a write at the same moment
                raise _refusal(exc, bucket, key) from None
        except BotoCoreError as exc:
            raise _refusal(exc, bucket, key) from None
        time.sleep(0.05 * 2 ** attempt)
    raise AssertionError("unreachable")


def presigned_download(key: str) -> dict[str, Any]:
    """A URL that GETs ``key`` of the input bucket without AWS credentials, for :data:`PRESIGNED_EXPIRY_S`."""
    bucket = input_bucket()
    with _as_api_errors(bucket, key):
        url = _client().generate_presigned_url("get_object", ExpiresIn=PRESIGNED_EXPIRY_S, Params={"Bucket": bucket, "Key": key})
    return {"url": url, "expires_in_s": PRESIGNED_EXPIRY_S, "s3": {"bucket": bucket, "key": key}}
