"""DICOM through the brain (and skin) function on the committed models: files no one here wrote
(pydicom's own test files, from its wheel), the raw application/dicom body, privacy, and the round
trip of test images written as DICOM."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from conftest import FakeLambdaContext, load_function_app
from image_helpers import split_rows
from local.dicom_files import IDENTIFYING, ct_in_hounsfield, secondary_capture
from local.events import json_event, proxy_event
from oncoserve_runtime.dicom import BRAIN_WINDOW

# Only files inside the wheel: pydicom's get_testdata_file would try to download the others.
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
LOSSLESS_MR = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_jp2klossless.dcm"]


@pytest.fixture(scope="module")
def brain():
    return load_function_app("brain")


@pytest.fixture(scope="module")
def skin():
    return load_function_app("skin")


def ask(app, route, data: bytes, **extra):
    """pydicom's files are phantoms, far from any training slice: the guard refuses them (asserted below),
    so these decoding tests ask for the answer with the flag ("ood": "report")."""
    extra.setdefault("ood", "report")
    response = app.lambda_handler(json_event(route, {"image": base64.b64encode(data).decode("ascii"), **extra}),
                                  FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize("name, status, outcome", [
    ("CT_small.dcm", 200, "ct"),
    ("MR_small.dcm", 200, "mri"),
    ("JPEG2000.dcm", 200, None),  # nuclear medicine: not CT or MR, so the modality is predicted
    ("JPEG-lossy.dcm", 415, "unsupported_transfer_syntax"),  # 12-bit JPEG
    ("MR_small_jpeg_ls_lossless.dcm", 415, "unsupported_transfer_syntax"),
    ("MR_truncated.dcm", 422, "corrupt_dicom"),
    ("rtplan.dcm", 422, "dicom_without_pixel_data"),
    ("ExplVR_BigEndNoMeta.dcm", 422, "dicom_without_pixel_data"),  # an RT plan, big endian, no file meta
    ("SC_rgb_jpeg.dcm", 422, "unsupported_dicom_image"),  # colour: the brain model takes greyscale
    # Shipped with one stray byte before its first element: pydicom itself reads a single unknown element.
    ("no_meta.dcm", 415, "not_an_image"),
])
def test_pydicoms_test_files_get_the_right_answer_or_the_right_error(brain, name, status, outcome):
    got_status, answer = ask(brain, "/brain/predict", (PYDICOM_FILES / name).read_bytes())
    assert got_status == status, answer
    if status == 200:
        assert answer["dicom"]["transfer_syntax"] and answer["label"] in ("tumor", "healthy")
        if outcome:
            assert answer["modality"] == {"value": outcome, "source": "dicom"}
        else:
            assert answer["modality"]["source"] == "predicted"
    else:
        assert answer["error"]["code"] == outcome


def test_a_phantom_is_refused_by_the_guard_unless_the_caller_asks_for_a_report(brain):
    status, answer = ask(brain, "/brain/predict", (PYDICOM_FILES / "MR_small.dcm").read_bytes(), ood="refuse")
    assert (status, answer["error"]["code"]) == (422, "out_of_distribution")
    status, answer = ask(brain, "/brain/predict", (PYDICOM_FILES / "MR_small.dcm").read_bytes())
    assert status == 200 and answer["ood"]["status"] == "out_of_distribution"


def test_the_same_pixels_in_any_lossless_encoding_get_the_same_answer(brain):
    answers = [ask(brain, "/brain/predict", (PYDICOM_FILES / name).read_bytes())[1] for name in LOSSLESS_MR]
    assert len({json.dumps(a["probabilities"]) for a in answers}) == 1
    assert [a["dicom"]["transfer_syntax"] for a in answers] == [
        "Explicit VR Little Endian", "RLE Lossless", "Explicit VR Big Endian", "Implicit VR Little Endian",
        "JPEG 2000 Image Compression (Lossless Only)"]


def test_the_no_meta_file_without_its_stray_byte_is_read_as_a_headerless_ct(brain):
    status, answer = ask(brain, "/brain/predict", (PYDICOM_FILES / "no_meta.dcm").read_bytes()[1:])
    assert status == 200 and answer["modality"]["value"] == "ct" and answer["dicom"]["window"]["source"] == "brain window (HU)"


def test_a_modality_that_contradicts_the_file_is_refused(brain):
    status, answer = ask(brain, "/brain/predict", (PYDICOM_FILES / "CT_small.dcm").read_bytes(), modality="mri")
    assert (status, answer["error"]["code"]) == (422, "modality_mismatch")
    assert ask(brain, "/brain/predict", (PYDICOM_FILES / "CT_small.dcm").read_bytes(), modality="ct")[0] == 200


def test_no_identifying_value_reaches_the_logs_or_the_answer(brain, shared_data, capsys):
    row = split_rows(shared_data, "brain").query("modality == 'ct'").iloc[0]
    pixels = np.asarray(Image.open(shared_data / "brain" / row["path"]).convert("L"))
    capsys.readouterr()
    answers = [ask(brain, "/brain/predict", data) for data in (
        ct_in_hounsfield(pixels, level=40, width=80, identifying=True),
        secondary_capture(pixels, modality="CT", identifying=True),
        secondary_capture(pixels, modality="CT", identifying=True)[:-500])]  # a refused one too
    logs = capsys.readouterr()
    assert [status for status, _ in answers] == [200, 200, 422]
    written = logs.out + logs.err + json.dumps(answers)
    for keyword, value in IDENTIFYING.items():
        for fragment in {value, *(part for part in value.split("^") if len(part) >= 3)}:
            assert fragment not in written, keyword
    assert set(answers[0][1]["dicom"]) == {"modality", "rows", "columns", "frames", "frame", "transfer_syntax",
                                           "photometric_interpretation", "window"}


def binary_event(route: str, data: bytes, **query: str) -> dict:
    query.setdefault("ood", "report")
    event = proxy_event(route, data, headers={"Content-Type": "application/dicom"}, base64_body=True,
                        query={k: [v] for k, v in query.items()} or None)
    return event


def test_the_raw_file_as_application_dicom_with_options_in_the_query_string(brain, skin):
    data = (PYDICOM_FILES / "CT_small.dcm").read_bytes()
    response = brain.lambda_handler(binary_event("/brain/predict", data, explain="true", frame="0"), FakeLambdaContext())
    answer = json.loads(response["body"])
    assert response["statusCode"] == 200 and "explanation" in answer and answer["dicom"]["frame"] == 0
    refused = brain.lambda_handler(binary_event("/brain/predict", data, colour="red"), FakeLambdaContext())
    assert (refused["statusCode"], json.loads(refused["body"])["error"]["code"]) == (422, "invalid_request")
    not_encoded = {**binary_event("/brain/predict", data), "isBase64Encoded": False}
    assert json.loads(brain.lambda_handler(not_encoded, FakeLambdaContext())["body"])["error"]["code"] == "invalid_body_encoding"
    colour = (PYDICOM_FILES / "SC_rgb_jpeg.dcm").read_bytes()
    assert skin.lambda_handler(binary_event("/skin/predict", colour), FakeLambdaContext())["statusCode"] == 200


def test_routes_without_dicom_say_so(shared_data):
    histopathology = load_function_app("histopathology")
    data = (PYDICOM_FILES / "CT_small.dcm").read_bytes()
    status, answer = ask(histopathology, "/histopathology/predict", data)
    assert (status, answer["error"]["code"]) == (415, "unsupported_image_format") and "DICOM" in answer["error"]["message"]
    response = histopathology.lambda_handler(binary_event("/histopathology/predict", data), FakeLambdaContext())
    assert (response["statusCode"], json.loads(response["body"])["error"]["code"]) == (415, "unsupported_media_type")


def test_test_images_written_as_dicom_keep_their_labels(brain, shared_data):
    rows = split_rows(shared_data, "brain").sample(30, random_state=5)
    disagreements = 0
    for row in rows.itertuples():
        path = shared_data / "brain" / row.path
        pixels = np.asarray(Image.open(path).convert("L"))
        reference = ask(brain, "/brain/predict", path.read_bytes(), modality=row.modality)[1]["label"]
        files = [secondary_capture(pixels, modality="CT" if row.modality == "ct" else "MR")]
        if row.modality == "ct":
            files.append(ct_in_hounsfield(pixels, level=BRAIN_WINDOW[0], width=BRAIN_WINDOW[1]))
        disagreements += sum(ask(brain, "/brain/predict", data)[1]["label"] != reference for data in files)
    assert disagreements <= 1


def test_the_runtime_applies_the_window_the_card_measured_and_its_round_trip_holds():
    from train.brain.dicom_input import CANDIDATE_WINDOWS, OUT

    report = json.loads(OUT.read_text())
    assert CANDIDATE_WINDOWS[report["window_screen"]["closest"]] == tuple(int(v) for v in BRAIN_WINDOW)
    assert all(trip["agreement"] >= 0.99 for trip in report["round_trip"].values())
