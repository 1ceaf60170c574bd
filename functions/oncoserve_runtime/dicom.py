"""DICOM slices → the 8-bit image the models were trained on (pydicom; Pillow decodes JPEG and
JPEG 2000, pydicom itself RLE and the uncompressed syntaxes).

Pixels go through the modality LUT (RescaleSlope/Intercept → Hounsfield units for CT), then one
window: CT in Hounsfield units gets the brain window (level 40, width 80 HU; see the brain card's
"DICOM input"); otherwise the file's own window or VOI LUT; an image already in display values
(at most 8 bits, no rescale, no window: a Secondary Capture) is used as stored; anything else gets
a 0.5–99.5 percentile window. MONOCHROME1 is inverted. A multi-frame file gives one frame (the
middle one unless the request names another).

Only the elements below are read (``specific_tags``): identifying tags (names, IDs, dates,
institutions) never reach memory, so they cannot reach a log or a response. Imported only when a
request carries DICOM (``inputs``): pydicom adds a few hundred milliseconds to a cold start.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from PIL import Image
from pydicom import config as pydicom_config
from pydicom.pixels import apply_rescale, apply_voi_lut, pixel_array
from pydicom.uid import UID

from .errors import ApiError, PayloadTooLargeError, UnprocessableEntityError, UnsupportedMediaTypeError
from .image_decoding import MAX_DICOM_FRAMES

# pydicom warns (and logs) about odd element values, quoting them: never let a value reach a log.
logging.getLogger("pydicom").disabled = True
pydicom_config.settings.reading_validation_mode = pydicom_config.IGNORE

BRAIN_WINDOW = (40.0, 80.0)  # level, width in HU
PERCENTILE_WINDOW = (0.5, 99.5)
# What the model needs to turn stored values into grey levels, and nothing else.
_READ_TAGS = [
    "Modality", "Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "PhotometricInterpretation",
    "PlanarConfiguration", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
    "RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence", "WindowCenter",
    "WindowWidth", "VOILUTFunction", "VOILUTSequence", "PixelData", "FloatPixelData", "DoubleFloatPixelData",
]
_UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"}
# Compressed syntaxes decoded without a GPL or oversized library (measured in the brain card).
_COMPRESSED = {
    "1.2.840.10008.1.2.4.50": 8,  # JPEG Baseline (Pillow)
    "1.2.840.10008.1.2.4.51": 8,  # JPEG Extended, 8-bit samples only (Pillow has no 12-bit JPEG)
    "1.2.840.10008.1.2.4.90": 16,  # JPEG 2000 lossless (Pillow's OpenJPEG)
    "1.2.840.10008.1.2.4.91": 16,  # JPEG 2000
    "1.2.840.10008.1.2.5": 16,  # RLE Lossless (pydicom)
}
MODALITIES = {"CT": "ct", "MR": "mri"}
# Objects with pixel data that are not pictures of the patient: masks and dose grids.
_NOT_IMAGES = {"SEG": "a segmentation mask", "RTDOSE": "a radiotherapy dose grid"}


@dataclass(frozen=True)
class DicomSlice:
    image: Image.Image  # 8-bit RGB (grey replicated, or colour where the route takes it)
    modality: str | None  # "ct" / "mri" from the file's Modality, None for any other
    info: dict[str, Any]  # what was used, for the response: no identifying data


def _transfer_syntax(ds: pydicom.Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return meta.TransferSyntaxUID
    # No file meta: the encoding pydicom found while reading says which uncompressed syntax it is.
    implicit, little = ds.original_encoding
    syntax = UID("1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1" if little else "1.2.840.10008.1.2.2")
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    return syntax


def _read(data: bytes) -> pydicom.Dataset:
    # Anything dcmread raises becomes corrupt_dicom in decode_dicom.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), force=True, specific_tags=_READ_TAGS)


def _check_geometry(ds: pydicom.Dataset, max_pixels: int, allow_colour: bool) -> int:
    """Refuse what the model cannot take before any pixel is decoded; return the frame count."""
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise UnprocessableEntityError(
            "dicom_without_pixel_data",
            f"The DICOM object (modality {ds.get('Modality', 'unknown')}) has no image: send an image slice, "
            "not a plan, report or structure set.")
    kind = _NOT_IMAGES.get(str(ds.get("Modality", "")))
    if kind:
        raise UnprocessableEntityError("unsupported_dicom_image", f"The DICOM object is {kind}, not an image slice.")
    rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if rows < 1 or columns < 1:
        raise UnprocessableEntityError("corrupt_dicom", "The DICOM image has no Rows/Columns.")
    if rows * columns > max_pixels:
        raise PayloadTooLargeError("image_too_large", f"The slice is {columns}x{rows} pixels; the limit is {max_pixels}.")
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames > MAX_DICOM_FRAMES:
        raise PayloadTooLargeError("too_many_frames", f"The file has {frames} frames; the limit is {MAX_DICOM_FRAMES}.")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    samples = int(ds.get("SamplesPerPixel") or 1)
    grey = photometric in ("MONOCHROME1", "MONOCHROME2") and samples == 1
    colour = photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT") and samples == 3
    if not grey and not (allow_colour and colour):
        wanted = "greyscale (MONOCHROME1/2)" + (" or RGB/YBR colour" if allow_colour else "")
        raise UnprocessableEntityError(
            "unsupported_dicom_image", f"The image is {photometric or 'of unknown photometry'} with {samples} "
            f"sample(s) per pixel; this model takes {wanted} slices.")
    return frames


def _check_transfer_syntax(ds: pydicom.Dataset) -> UID:
    syntax = _transfer_syntax(ds)
    bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 8)
    if syntax in _UNCOMPRESSED or bits <= _COMPRESSED.get(syntax, 0):
        return syntax
    name = syntax.name if syntax.is_valid else str(syntax)
    raise UnsupportedMediaTypeError(
        "unsupported_transfer_syntax",
        f"{name} ({bits}-bit) is not decoded here; send it uncompressed, as JPEG 2000, RLE or 8-bit JPEG.")


def linear_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 VOI windowing to 0..255."""
    if function == "SIGMOID":
        return 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((values - center) / width + 0.5, 0.0, 1.0) * 255.0
    width = max(width, 1.0)
    return np.clip((values - (center - 0.5)) / (width - 1.0) + 0.5, 0.0, 1.0) * 255.0


def _first(value: Any) -> float:
    number = float(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)
    if not np.isfinite(number):  # NaN or Infinity in a DS element: no window can be made of it
        raise UnprocessableEntityError("corrupt_dicom", "The file's window (WindowCenter/WindowWidth) is not a finite number.")
    return number


def _to_display(stored: np.ndarray, ds: pydicom.Dataset) -> tuple[np.ndarray, dict[str, Any]]:
    """Stored values → 0..255 float grey levels, and the window that was used."""
    rescaled = "RescaleSlope" in ds or "RescaleIntercept" in ds or "ModalityLUTSequence" in ds
    values = apply_rescale(stored, ds).astype(np.float64) if rescaled else stored.astype(np.float64)
    if ds.get("Modality") == "CT" and rescaled:
        center, width = BRAIN_WINDOW
        return linear_window(values, center, width), {"source": "brain window (HU)", "center": center, "width": width}
    if "WindowCenter" in ds and "WindowWidth" in ds:
        center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
        function = str(ds.get("VOILUTFunction", "LINEAR")).upper()
        return linear_window(values, center, width, function), {"source": "file", "center": center, "width": width}
    if "VOILUTSequence" in ds:
        mapped = apply_voi_lut(stored, ds, index=0).astype(np.float64)
        lo, hi = float(mapped.min()), float(mapped.max())
        return (mapped - lo) * (255.0 / max(hi - lo, 1e-9)), {"source": "file VOI LUT"}
    if int(ds.get("BitsStored") or 8) <= 8 and not rescaled:
        return values, {"source": "none (display values)"}
    lo, hi = (float(v) for v in np.percentile(values, PERCENTILE_WINDOW))
    center, width = (lo + hi) / 2.0, max(hi - lo, 1.0)
    return (linear_window(values, center, width),
            {"source": f"percentile {PERCENTILE_WINDOW[0]}–{PERCENTILE_WINDOW[1]}", "center": round(center, 2),
             "width": round(width, 2)})


def decode_dicom(data: bytes, *, frame: int | None = None, max_pixels: int, min_side: int = 1,
                 allow_colour: bool = False) -> DicomSlice:
    """One frame of a DICOM file as an 8-bit RGB image (see :func:`_decode`). Whatever else goes
    wrong inside pydicom on untrusted bytes is the file's fault: ``corrupt_dicom``, never a 500."""
    try:
        return _decode(data, frame=frame, max_pixels=max_pixels, min_side=min_side, allow_colour=allow_colour)
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise UnprocessableEntityError("corrupt_dicom", f"The DICOM file cannot be read: {type(exc).__name__}.")


def _decode(data: bytes, *, frame: int | None, max_pixels: int, min_side: int, allow_colour: bool) -> DicomSlice:
    """One frame of a DICOM file as an 8-bit RGB image, windowed as described above.

    Raises
    ------
    UnprocessableEntityError
        ``corrupt_dicom``, ``dicom_without_pixel_data``, ``unsupported_dicom_image``,
        ``frame_out_of_range`` or ``image_too_small``.
    UnsupportedMediaTypeError
        ``unsupported_transfer_syntax``.
    PayloadTooLargeError
        ``image_too_large`` or ``too_many_frames``.
    """
    ds = _read(data)
    frames = _check_geometry(ds, max_pixels, allow_colour)
    syntax = _check_transfer_syntax(ds)
    if min(int(ds.Rows), int(ds.Columns)) < min_side:
        raise UnprocessableEntityError(
            "image_too_small", f"The slice is {ds.Columns}x{ds.Rows}; each side must be at least {min_side} pixels.")
    index = frames // 2 if frame is None else frame
    if not 0 <= index < frames:
        raise UnprocessableEntityError("frame_out_of_range", f"frame {index} asked for; the file has {frames} (0–{frames - 1}).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stored = pixel_array(ds, index=index if frames > 1 else None)
    except Exception as exc:  # noqa: BLE001 - any decoder failure on untrusted bytes is the file's fault
        raise UnprocessableEntityError("corrupt_dicom", f"The pixel data cannot be decoded (truncated?): {type(exc).__name__}.")
    photometric = str(ds.PhotometricInterpretation)
    info: dict[str, Any] = {"modality": str(ds.get("Modality", "")) or None, "rows": int(ds.Rows),
                            "columns": int(ds.Columns), "frames": frames, "frame": index,
                            "transfer_syntax": syntax.name if syntax.is_valid else str(syntax),
                            "photometric_interpretation": photometric}
    if stored.ndim == 3:  # colour: pydicom has converted YBR to RGB already
        image = Image.fromarray(stored.astype(np.uint8) if stored.dtype != np.uint8 else stored, mode="RGB")
        info["window"] = {"source": "none (colour)"}
    else:
        grey, info["window"] = _to_display(stored, ds)
        if photometric == "MONOCHROME1":
            grey = 255.0 - grey
        image = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), mode="L").convert("RGB")
    return DicomSlice(image=image, modality=MODALITIES.get(info["modality"] or ""), info=info)
