"""DICOM slices → model input: windowing, frames, refusals (synthetic files written with pydicom)."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEGLSLossless, JPEGLosslessSV1

from local.dicom_files import bare, ct_in_hounsfield, secondary_capture, with_transfer_syntax, without_pixels
from oncoserve_runtime.dicom import BRAIN_WINDOW, decode_dicom, linear_window
from oncoserve_runtime.errors import ApiError
from oncoserve_runtime.image_decoding import MAX_DICOM_FRAMES, looks_like_dicom

RAMP = np.tile(np.arange(256, dtype=np.uint8), (32, 1))  # every grey level, 32 x 256


def grey_of(data: bytes, **options) -> np.ndarray:
    return np.asarray(decode_dicom(data, max_pixels=10**7, **options).image.convert("L"), dtype=int)


def code_of(data: bytes, **options) -> tuple[int, str]:
    with pytest.raises(ApiError) as caught:
        decode_dicom(data, max_pixels=10**7, **options)
    return caught.value.status, caught.value.code


def edit(data: bytes, **elements) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_dicom_is_recognised_by_content_not_by_name():
    assert looks_like_dicom(secondary_capture(RAMP))
    assert not looks_like_dicom(b"\x89PNG\r\n\x1a\n" + bytes(200)) and not looks_like_dicom(b"\xff\xd8\xff" + bytes(200))


@pytest.mark.parametrize("implicit_vr, little_endian", [(True, True), (False, True), (False, False)])
def test_files_without_a_file_meta_header_are_read_in_any_byte_order(implicit_vr, little_endian):
    data = bare(secondary_capture(RAMP, modality="MR"), implicit_vr=implicit_vr, little_endian=little_endian)
    assert data[128:132] != b"DICM" and looks_like_dicom(data)
    scan = decode_dicom(data, max_pixels=10**7)
    assert (np.asarray(scan.image.convert("L")) == RAMP).all() and scan.modality == "mri"


def test_display_values_in_a_secondary_capture_are_used_as_stored():
    assert (grey_of(secondary_capture(RAMP)) == RAMP).all()
    assert (grey_of(secondary_capture(RAMP, photometric="MONOCHROME1")) == 255 - RAMP).all()


def test_ct_in_hounsfield_units_gets_the_brain_window_whatever_window_the_file_carries():
    level, width = BRAIN_WINDOW
    data = ct_in_hounsfield(RAMP, level=level, width=width)  # the file says level 400 / width 2000
    got = grey_of(data)
    assert np.abs(got - RAMP).max() <= 5  # integer HU keep ~80 of 256 levels under an 80-HU window
    info = decode_dicom(data, max_pixels=10**7).info
    assert info["window"] == {"source": "brain window (HU)", "center": level, "width": width}


def test_the_files_window_is_applied_when_not_ct_in_hounsfield_units():
    values = (RAMP.astype(np.uint16) * 16)  # 12-bit MR-like values
    data = edit(secondary_capture(RAMP, modality="MR"), BitsAllocated=16, BitsStored=12, HighBit=11,
                PixelData=values.tobytes(), WindowCenter=2048, WindowWidth=1024)
    got = grey_of(data)
    expected = np.rint(linear_window(values.astype(float), 2048, 1024)).astype(int)
    assert (got == expected).all() and got.min() == 0 and got.max() == 255


def test_without_a_window_wide_values_get_a_percentile_window():
    values = (RAMP.astype(np.uint16) * 16)
    data = edit(secondary_capture(RAMP, modality="MR"), BitsAllocated=16, BitsStored=12, HighBit=11, PixelData=values.tobytes())
    info = decode_dicom(data, max_pixels=10**7).info
    assert info["window"]["source"].startswith("percentile")
    got = grey_of(data)
    assert got.min() == 0 and got.max() == 255 and (np.diff(got[0]) >= 0).all()  # order kept, range stretched


def test_linear_window_follows_the_dicom_formula():
    # PS3.3 C.11.2.1.2.1: centre 2048, width 4096 maps 0 to the bottom and 4095 to the top.
    assert linear_window(np.array([0.0, 4095.0]), 2048, 4096).round(1).tolist() == [0.0, 255.0]
    assert linear_window(np.array([39.5]), 40, 80).round(1).tolist() == [127.5]


def test_a_multi_frame_file_scores_its_middle_frame_unless_asked():
    frames = np.stack([np.full((16, 16), 10 * i, dtype=np.uint8) for i in range(5)])
    data = edit(secondary_capture(frames[0]), NumberOfFrames=5, PixelData=frames.tobytes())
    assert grey_of(data)[0, 0] == 20
    assert grey_of(data, frame=4)[0, 0] == 40
    assert decode_dicom(data, max_pixels=10**7, frame=1).info["frame"] == 1
    assert code_of(data, frame=5) == (422, "frame_out_of_range")


def test_files_the_model_cannot_take_get_their_own_codes():
    assert code_of(without_pixels()) == (422, "dicom_without_pixel_data")
    assert code_of(secondary_capture(RAMP)[:-100]) == (422, "corrupt_dicom")
    colour = np.stack([RAMP, RAMP, RAMP], axis=-1)
    assert code_of(secondary_capture(colour)) == (422, "unsupported_dicom_image")
    assert decode_dicom(secondary_capture(colour), max_pixels=10**7, allow_colour=True).image.mode == "RGB"
    assert code_of(edit(secondary_capture(RAMP), Modality="SEG")) == (422, "unsupported_dicom_image")
    for syntax in (JPEGLSLossless, JPEGLosslessSV1):
        assert code_of(with_transfer_syntax(secondary_capture(RAMP), syntax)) == (415, "unsupported_transfer_syntax")
    assert code_of(edit(secondary_capture(RAMP), NumberOfFrames=MAX_DICOM_FRAMES + 1)) == (413, "too_many_frames")
    with pytest.raises(ApiError) as caught:
        decode_dicom(secondary_capture(RAMP), max_pixels=1000)
    assert (caught.value.status, caught.value.code) == (413, "image_too_large")
    with pytest.raises(ApiError) as caught:
        decode_dicom(secondary_capture(RAMP), max_pixels=10**7, min_side=64)
    assert caught.value.code == "image_too_small"


def test_a_jpeg_compressed_secondary_capture_decodes_close_to_its_pixels():
    got = grey_of(secondary_capture(RAMP, jpeg_quality=95))
    assert np.abs(got - RAMP.astype(int)).mean() < 2


def test_deflated_files_are_read():
    ds = pydicom.dcmread(io.BytesIO(secondary_capture(RAMP)))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    assert (grey_of(out.getvalue()) == RAMP).all()


def test_damaged_files_are_refused_with_a_code_never_an_exception():
    # GIVEN valid files with bytes overwritten or cut at seeded random places, WHEN decoded,
    # THEN each either decodes or is refused with an ApiError (a 4xx): nothing else escapes.
    rng = np.random.default_rng(7)
    originals = [secondary_capture(RAMP), ct_in_hounsfield(RAMP, level=40, width=80),
                 secondary_capture(RAMP, jpeg_quality=90)]
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(150):
        data = bytearray(originals[rng.integers(len(originals))])
        for position in rng.integers(0, len(data), rng.integers(1, 8)):
            data[position] = rng.integers(256)
        if rng.random() < 0.3:
            data = data[: rng.integers(1, len(data))]
        try:
            decode_dicom(bytes(data), max_pixels=10**7, allow_colour=True)
            outcomes["decoded"] += 1
        except ApiError as exc:
            assert 400 <= exc.status < 500
            outcomes["refused"] += 1
    assert outcomes["decoded"] and outcomes["refused"]


def test_a_window_that_is_not_a_finite_number_is_the_files_fault_not_a_500():
    values = (RAMP.astype(np.uint16) * 16)
    data = edit(secondary_capture(RAMP, modality="MR"), BitsAllocated=16, BitsStored=12, HighBit=11,
                PixelData=values.tobytes(), WindowCenter="NaN", WindowWidth=1024)
    assert code_of(data) == (422, "corrupt_dicom")
