"""What a caller hands the client → the request body the API takes."""

from __future__ import annotations

import base64
import csv
import json
import os
from pathlib import Path
from typing import Any, Mapping, Union

ImageSource = Union[str, os.PathLike, bytes]
ExpressionSource = Union[Mapping[str, float], str, os.PathLike]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
# Base64 grows a file by a third and a request is at most 6 MB: larger files go by upload.
MAX_INLINE_BYTES = 4 * 1024 * 1024


def image_bytes(source: ImageSource) -> bytes | None:
    """The bytes of a path or of bytes; ``None`` for an http(s) URL (the API fetches it)."""
    if isinstance(source, bytes):
        return source
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return None
    return Path(source).read_bytes()


def image_body(source: ImageSource) -> dict[str, Any]:
    """``{"url": …}`` for an http(s) URL, else ``{"image": base64}`` of the bytes or of the file at
    the path (PNG, JPEG or DICOM)."""
    data = image_bytes(source)
    return {"url": source} if data is None else {"image": base64.b64encode(data).decode("ascii")}


def media_type(data: bytes) -> str:
    """What an upload declares, from the file's own signature (the API decodes by content too)."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return "application/dicom"


def expression_body(source: ExpressionSource) -> dict[str, Any]:
    """The compact form ``{"genes": [...], "values": [...]}`` from a mapping, a JSON file (either
    form) or a CSV file of two columns, gene id and value (a header row is skipped)."""
    if isinstance(source, Mapping):
        return {"genes": list(source), "values": [float(v) for v in source.values()]}
    path = Path(source)
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("expression"), dict):
            return expression_body(data["expression"])
        if isinstance(data, dict) and {"genes", "values"} <= set(data):
            return {"genes": data["genes"], "values": data["values"]}
        raise ValueError(f"{path}: expected {{\"expression\": {{…}}}} or {{\"genes\": […], \"values\": […]}}")
    genes, values = [], []
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle)):
            if not row or not row[0].strip():
                continue
            try:
                value = float(row[1])
            except (IndexError, ValueError):
                if number == 0:
                    continue  # a header
                raise ValueError(f"{path}:{number + 1}: expected 'gene,value', got {row!r}")
            genes.append(row[0].strip())
            values.append(value)
    return {"genes": genes, "values": values}
