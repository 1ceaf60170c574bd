"""Write DICOM files for events, tests and the brain card's round trip (pydicom; development only).

``secondary_capture`` stores display values as a scanner's export would (8-bit, optionally JPEG
compressed); ``ct_in_hounsfield`` stores a CT slice as raw values with a rescale to HU, the way a CT
scanner writes it. UIDs are fixed, so the same pixels always give the same bytes.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit

SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2")
MR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.4")
_ROOT = "1.2.826.0.1.3680043.8.498.4242"  # a fixed example root: deterministic files
# Filled-in identifying tags, for tests that check none of them leaves the function.
IDENTIFYING = {"PatientName": "Doe^Jane^Q", "PatientID": "MRN-0042-SECRET", "PatientBirthDate": "19610704",
               "StudyDate": "20251231", "InstitutionName": "St Example Hospital", "ReferringPhysicianName": "Who^Doctor",
               "AccessionNumber": "ACC-998877", "OtherPatientIDs": "OTHER-1234"}


def _dataset(sop_class: UID, modality: str, syntax: UID, identifying: bool) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = UID(f"{_ROOT}.1")
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = UID(f"{_ROOT}.2"), UID(f"{_ROOT}.3")
    ds.Modality = modality
    for keyword, value in (IDENTIFYING.items() if identifying else ()):
        setattr(ds, keyword, value)
    return ds


def _pixels(ds: Dataset, pixels: np.ndarray, *, bits: int, signed: bool, photometric: str) -> None:
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel = 3 if pixels.ndim == 3 else 1
    if pixels.ndim == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = int(signed)


def _save(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def secondary_capture(pixels: np.ndarray, *, modality: str = "OT", jpeg_quality: int | None = None,
                      photometric: str | None = None, identifying: bool = False, **elements: Any) -> bytes:
    """8-bit grey (H, W) or RGB (H, W, 3) display values as a Secondary Capture; JPEG Baseline when
    ``jpeg_quality`` is given, else uncompressed. ``elements`` are set as given (e.g. WindowCenter)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    syntax = JPEGBaseline8Bit if jpeg_quality else ExplicitVRLittleEndian
    ds = _dataset(SECONDARY_CAPTURE, modality, syntax, identifying)
    colour = pixels.ndim == 3
    _pixels(ds, pixels, bits=8, signed=False, photometric=photometric or ("RGB" if colour else "MONOCHROME2"))
    if jpeg_quality:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=jpeg_quality)
        ds.PixelData = encapsulate([buffer.getvalue()])
        if colour:
            ds.PhotometricInterpretation = "YBR_FULL_422"  # what Pillow's JPEG encoder stores
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = pixels.tobytes()
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return _save(ds)


def ct_in_hounsfield(grey: np.ndarray, *, level: float, width: float, identifying: bool = False) -> bytes:
    """A CT slice whose display grey levels (0..255, as exported with window ``level``/``width``) are
    turned back into Hounsfield units and stored as a scanner does: unsigned raw values, rescale
    intercept −1024. Windowing it again with the same window gives the grey levels back."""
    hu = level - width / 2.0 + np.asarray(grey, dtype=np.float64) / 255.0 * width
    ds = _dataset(CT_IMAGE, "CT", ExplicitVRLittleEndian, identifying)
    raw = np.clip(np.rint(hu + 1024.0), 0, 4095).astype(np.uint16)
    _pixels(ds, raw, bits=16, signed=False, photometric="MONOCHROME2")
    ds.BitsStored, ds.HighBit = 12, 11
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
    ds.WindowCenter, ds.WindowWidth = 400, 2000  # a bone window in the file: the brain window must win
    ds.PixelData = raw.tobytes()
    return _save(ds)


def without_pixels(modality: str = "SR") -> bytes:
    """A DICOM object with no image, as a structured report or an RT plan is."""
    return _save(_dataset(UID("1.2.840.10008.5.1.4.1.1.88.11"), modality, ExplicitVRLittleEndian, False))


def with_transfer_syntax(data: bytes, syntax: UID) -> bytes:
    """The same file claiming another (compressed) transfer syntax, for refusal tests."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([b"\xff\xd8not really compressed\xff\xd9"])
    ds["PixelData"].VR = "OB"
    return _save(ds)


def bare(data: bytes, *, implicit_vr: bool = True, little_endian: bool = True) -> bytes:
    """The same data set with no preamble and no file meta header, as older software writes it."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    del ds.file_meta
    ds.preamble = None
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=implicit_vr, little_endian=little_endian, enforce_file_format=False,
                     force_encoding=True)
    return buffer.getvalue()
