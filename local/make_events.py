"""Write the API Gateway events in ``events/``: ``python -m local.make_events``.

Two kinds, each listed with what it must produce in an ``expected.json`` beside it:

* ``events/<task>/`` — committed; need no dataset (bad requests, synthetic images).
* ``events/generated/<task>/`` — git-ignored; built from ``../shared/data`` (real samples), each
  also written as a bare request body (``*.body.json``) for curl.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from contract.registry import TASKS

from .events import EVENTS_DIR, json_event, proxy_event

# (file name, event, expectation) — expectation: {"status": int, "code"?: str, "label"?: str}
EventCase = tuple[str, dict[str, Any], dict[str, Any]]


def _expect(status: int, code: str | None = None, label: str | None = None) -> dict[str, Any]:
    return {k: v for k, v in {"status": status, "code": code, "label": label}.items() if v is not None}


def common_bad_events(path: str) -> Iterator[EventCase]:
    """Malformed requests every function refuses the same way."""
    yield "bad_invalid_json.json", proxy_event(path, '{"oops": '), _expect(400, "invalid_json")
    yield "bad_empty_body.json", proxy_event(path, None), _expect(400, "missing_body")
    yield "bad_body_not_object.json", json_event(path, [1, 2, 3]), _expect(422, "body_not_object")
    yield "bad_wrong_method.json", proxy_event(path, None, method="GET"), _expect(405, "method_not_allowed")


def service_events(prefix: str) -> Iterator[EventCase]:
    """The metadata and health routes every function answers."""
    yield "ok_model.json", proxy_event(f"{prefix}/model", None, method="GET"), _expect(200)
    yield "ok_health.json", proxy_event(f"{prefix}/health", None, method="GET"), _expect(200)


def expression_bad_events(path: str, known_gene: str) -> Iterator[EventCase]:
    yield from common_bad_events(path)
    yield from service_events(path.rsplit("/", 1)[0])
    yield ("bad_genes_values_length.json", json_event(path, {"genes": [known_gene], "values": [1.0, 2.0]}),
           _expect(422, "invalid_request"))
    yield ("bad_both_forms.json", json_event(path, {"expression": {known_gene: 1.0}, "genes": [known_gene], "values": [1.0]}),
           _expect(422, "invalid_request"))
    yield "bad_missing_expression.json", json_event(path, {"genes": {known_gene: 1.0}}), _expect(422, "invalid_request")
    yield ("bad_nan_value.json", proxy_event(path, '{"expression": {"%s": NaN}}' % known_gene),
           _expect(422, "non_finite_number"))
    yield "bad_string_value.json", json_event(path, {"expression": {known_gene: "high"}}), _expect(422, "invalid_request")
    yield "bad_missing_genes.json", json_event(path, {"expression": {known_gene: 1.0}}), _expect(422, "missing_genes")
    yield ("bad_unknown_gene.json", json_event(path, {"expression": {known_gene: 1.0, "NOT_A_GENE": 2.0}}),
           _expect(422, "unknown_genes"))


def _png(width: int, height: int, mode: str = "RGB") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def image_bad_events(path: str) -> Iterator[EventCase]:
    """Bad images and refused URLs (synthetic: no dataset needed)."""
    import base64

    from PIL import Image

    def image_event(data: bytes, **extra: Any) -> dict[str, Any]:
        return json_event(path, {"image": base64.b64encode(data).decode("ascii"), **extra})

    gif = io.BytesIO()
    Image.new("RGB", (32, 32)).save(gif, format="GIF")
    yield from common_bad_events(path)
    yield "bad_not_base64.json", json_event(path, {"image": "this is not base64!"}), _expect(400, "invalid_base64")
    yield "bad_not_image.json", image_event(b"%PDF-1.4 not an image at all"), _expect(415, "not_an_image")
    yield "bad_gif_image.json", image_event(gif.getvalue()), _expect(415, "unsupported_image_format")
    yield "bad_truncated_image.json", image_event(_png(64, 64)[:60]), _expect(422, "corrupt_image")
    # 8000 x 8000 = 64 Mpx, in a PNG of a few kB: a decompression bomb in miniature.
    yield "bad_huge_image.json", image_event(_png(8000, 8000, mode="1")), _expect(413, "image_too_large")
    yield "bad_image_and_url.json", json_event(path, {"image": "AAAA", "url": "https://example.org/a.png"}), _expect(422, "invalid_request")
    yield "bad_unknown_field.json", json_event(path, {"url": "https://example.org/a.png", "colour": "red"}), _expect(422, "invalid_request")
    yield ("bad_url_metadata_service.json", json_event(path, {"url": "http://169.254.169.254/latest/meta-data/"}),
           _expect(422, "url_not_allowed"))
    yield "bad_url_loopback.json", json_event(path, {"url": "http://127.0.0.1:3000/x.png"}), _expect(422, "url_not_allowed")
    yield "bad_url_file_scheme.json", json_event(path, {"url": "file:///etc/passwd"}), _expect(422, "url_not_allowed")


def job_events(prefix: str) -> Iterator[EventCase]:
    """Jobs refused before any S3 call (the replay has no bucket), and the status route's path parameter."""
    jobs = f"{prefix}/jobs"
    yield "bad_job_without_inputs.json", json_event(jobs, {"route": "predict"}), _expect(422, "invalid_request")
    yield ("bad_job_unknown_route.json", json_event(jobs, {"route": "segment", "inputs": {"bucket": "oncoserve-input",
                                                                                           "prefix": "study/"}}),
           _expect(422, "invalid_request"))
    yield ("bad_job_malformed_id.json", proxy_event(f"{jobs}/not-a-job-id", None, method="GET", resource=f"{jobs}/{{id}}",
                                                    path_parameters={"id": "not-a-job-id"}), _expect(404, "job_not_found"))


# ------------------------------------------------------------------------------------------------
# Per task
# ------------------------------------------------------------------------------------------------


def leukemia_static() -> Iterator[EventCase]:
    yield from expression_bad_events("/leukemia/predict", "AFFX-BioB-5_at")
    yield "bad_wrong_route.json", json_event("/leukemia/nope", {}), _expect(404, "unknown_route")


def leukemia_generated() -> Iterator[EventCase]:
    sys.path.insert(0, str(EVENTS_DIR.parent))
    from train.leukemia.data import LABELS, load_golub

    genes, _, independent = load_golub()
    wanted = {"ok_all.json": 0, "ok_aml.json": 1}
    for name, label in wanted.items():
        row = int(next(i for i, y in enumerate(independent.labels) if y == label))
        expression = {gene: float(v) for gene, v in zip(genes, independent.expression[row])}
        yield name, json_event("/leukemia/predict", {"expression": expression}), _expect(200, label=LABELS[label])
        compact = {"genes": list(genes), "values": independent.expression[row].astype(float).tolist()}
        yield name.replace(".json", "_compact.json"), json_event("/leukemia/predict", compact), _expect(200, label=LABELS[label])
    # The same profile log2-transformed: another scale than the raw intensities the model was trained on
    logged = {"genes": list(genes), "values": np.log2(np.clip(independent.expression[0], 1, None)).tolist()}
    yield "bad_log_transformed_out_of_distribution.json", json_event("/leukemia/predict", logged), \
        _expect(422, "out_of_distribution")


def breast_survival_static() -> Iterator[EventCase]:
    yield from expression_bad_events("/breast-survival/predict", "brca1")
    yield ("bad_duplicate_gene.json", json_event("/breast-survival/predict", {"expression": {"BRCA1": 0.1, "brca1": 0.2}}),
           _expect(422, "duplicate_genes"))
    # Clinical values out of their schema ranges or of the wrong type are refused before any gene is looked up.
    for name, clinical in (("age_300", {"age_at_diagnosis": 300}), ("negative_size", {"tumor_size": -5}),
                           ("grade_4", {"neoplasm_histologic_grade": 4}), ("string_nodes", {"lymph_nodes_examined_positive": "two"}),
                           ("status_word", {"er_status": "yes"}), ("unknown_field", {"tumor_stage": 2})):
        yield (f"bad_clinical_{name}.json", json_event("/breast-survival/predict",
                                                       {"expression": {"brca1": 0.1}, "clinical": clinical}),
               _expect(422, "invalid_request"))


def breast_survival_generated() -> Iterator[EventCase]:
    sys.path.insert(0, str(EVENTS_DIR.parent))
    from train.breast_survival.data import load_metabric

    test = load_metabric().subset("test")
    profile = dict(zip(test.genes, test.expression[0].tolist()))
    path = "/breast-survival/predict"
    yield "ok_patient.json", json_event(path, {"expression": profile}), _expect(200)
    yield ("ok_upper_case_symbols.json", json_event(path, {"expression": {g.upper(): v for g, v in profile.items()}}),
           _expect(200))
    # 95% of the genes: above the 90% coverage rule, the rest filled with training means.
    partial = dict(list(profile.items())[: int(len(profile) * 0.95)])
    yield "ok_95_percent_of_genes.json", json_event(path, {"expression": partial}), _expect(200)
    # The compact form in another order than the model's: looked up gene by gene.
    reordered = list(profile.items())[::-1]
    yield ("ok_patient_compact_reordered.json",
           json_event(path, {"genes": [g for g, _ in reordered], "values": [v for _, v in reordered]}), _expect(200))
    half = dict(list(profile.items())[: len(profile) // 2])
    yield "bad_half_of_genes.json", json_event(path, {"expression": half}), _expect(422, "missing_genes")
    # The same patient with her clinical values: the clinical + expression model answers.
    from train.breast_survival.clinical import NAMES

    row = next(i for i in range(len(test.months)) if not np.isnan(test.clinical[i]).any())
    clinical = {name: clinical_value(name, v) for name, v in zip(NAMES, test.clinical[row])}
    profile = dict(zip(test.genes, test.expression[row].tolist()))
    yield "ok_patient_with_clinical.json", json_event(path, {"expression": profile, "clinical": clinical}), _expect(200)
    yield ("ok_clinical_grade_unknown.json",
           json_event(path, {"expression": profile, "clinical": {**clinical, "neoplasm_histologic_grade": None}}), _expect(200))
    three_unknown = {k: v for k, v in clinical.items() if k not in ("tumor_size", "neoplasm_histologic_grade", "her2_status")}
    yield ("bad_clinical_three_unknown.json", json_event(path, {"expression": profile, "clinical": three_unknown}),
           _expect(422, "clinical_incomplete"))


def clinical_value(name: str, value: float):
    """A METABRIC clinical value as a request states it (receptor status as the word)."""
    if name.endswith("_status"):
        return "Positive" if value == 1 else "Negative"
    return int(value) if name in ("lymph_nodes_examined_positive", "neoplasm_histologic_grade") else float(value)


def histopathology_static() -> Iterator[EventCase]:
    import base64

    yield from image_bad_events("/histopathology/predict")
    yield from service_events("/histopathology")
    yield from job_events("/histopathology")
    big = base64.b64encode(_png(400, 400)).decode("ascii")
    yield ("bad_patch_too_large.json", json_event("/histopathology/predict", {"image": big}),
           _expect(422, "image_too_large_for_patch"))
    noise = np.random.default_rng(0).integers(0, 256, (50, 50, 3), dtype=np.uint8)
    yield ("bad_noise_patch_out_of_distribution.json", json_event("/histopathology/predict", {"image": _encode(noise)}),
           _expect(422, "out_of_distribution"))
    black = np.zeros((50, 50, 3), np.uint8)  # one colour: nothing to score, whatever training patch it resembles
    yield ("bad_black_patch_out_of_distribution.json", json_event("/histopathology/predict", {"image": _encode(black)}),
           _expect(422, "out_of_distribution"))
    region = "/histopathology/region"
    # A photograph sent whole to the tiled route: judged as a whole image, refused (or answered with "report")
    for name, event, expectation in photograph_events(region):
        yield name.replace("bad_", "bad_region_").replace("ok_", "ok_region_"), event, expectation
    white = np.full((200, 200, 3), 255, np.uint8)  # all glass: no tissue tile to answer for
    yield ("bad_region_blank_out_of_distribution.json", json_event(region, {"image": _encode(white)}),
           _expect(422, "out_of_distribution"))
    for name, event, expectation in image_bad_events(region):
        if name in ("bad_not_image.json", "bad_huge_image.json", "bad_url_metadata_service.json", "bad_invalid_json.json"):
            yield name.replace("bad_", "bad_region_"), event, expectation


def _encode(pixels, fmt: str = "PNG", **options: Any) -> str:
    import base64

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def histopathology_generated() -> Iterator[EventCase]:
    import numpy as np

    sys.path.insert(0, str(EVENTS_DIR.parent))
    from train.histopathology.data import load_splits, stitched_region

    images, labels, _ = load_splits()["test"]
    for label, name in ((1, "ok_idc_patch.json"), (0, "ok_non_idc_patch.json")):
        index = int(np.flatnonzero(labels == label)[0])
        yield name, json_event("/histopathology/predict", {"image": _encode(images[index])}), _expect(200)
    region, _ = stitched_region(images, labels, 8, 8, seed=7)
    yield "ok_region_stitched.json", json_event("/histopathology/region", {"image": _encode(region)}), _expect(200)
    # The same region with its top row of tiles replaced by noise: those tiles are refused, left blank
    noisy = region.copy()
    noisy[:50] = np.random.default_rng(7).integers(0, 256, noisy[:50].shape, dtype=np.uint8)
    yield "ok_region_noise_tiles_blank.json", json_event("/histopathology/region", {"image": _encode(noisy)}), _expect(200)
    # A dermoscopy image on the tiled route: its tiles are each merely atypical H&E, the image as a whole is refused
    dermoscopy = {"image": _shared_image("skin", _first_test_path("skin", source_dataset="HAM10000", label="melanoma"))}
    yield ("bad_region_dermoscopy_out_of_distribution.json", json_event("/histopathology/region", dermoscopy),
           _expect(422, "out_of_distribution"))
    yield ("ok_region_dermoscopy_ood_report.json", json_event("/histopathology/region", {**dermoscopy, "ood": "report"}),
           _expect(200))
    # 2048 x 2048: the size the issue times (41 x 41 held-out patches, cropped), JPEG to fit the payload.
    big, _ = stitched_region(images, labels, 41, 41, seed=8)
    yield ("ok_region_2048.json", json_event("/histopathology/region", {"image": _encode(big[:2048, :2048], "JPEG", quality=90)}),
           _expect(200))


def _shared_image(task: str, relative: str) -> str:
    import base64

    sys.path.insert(0, str(EVENTS_DIR.parent))
    from train import core

    return base64.b64encode((core.task_data_dir(task) / relative).read_bytes()).decode("ascii")


def _first_test_path(task: str, **columns: str) -> str:
    sys.path.insert(0, str(EVENTS_DIR.parent))
    from train.imaging import load_manifest

    manifest = load_manifest(task)
    rows = manifest[manifest["split"] == "test"]
    for column, value in columns.items():
        rows = rows[rows[column] == value]
    return str(rows["path"].iloc[0])


def _head_phantom() -> Any:
    """A synthetic axial head slice in Hounsfield units: air, a skull ring, brain, ventricles."""
    import numpy as np

    y, x = np.mgrid[-1:1:128j, -1:1:128j]
    radius = np.hypot(x / 0.8, y / 0.95)
    hu = np.full(radius.shape, -1000.0)
    hu[radius < 1.0] = 1000.0  # bone
    hu[radius < 0.9] = 32.0  # brain
    hu[(np.hypot((x - 0.15) / 0.08, y / 0.3) < 1) | (np.hypot((x + 0.15) / 0.08, y / 0.3) < 1)] = 8.0  # CSF
    return hu


def _phantom_grey() -> Any:
    """The phantom as displayed under the brain window (level 40, width 80 HU): grey levels 0..255."""
    import numpy as np

    return np.clip(_head_phantom() / 80.0 * 255.0, 0, 255)


def _phantom_ct() -> bytes:
    """The phantom's grey levels stored back as HU with a rescale, as a scanner writes."""
    from .dicom_files import ct_in_hounsfield

    return ct_in_hounsfield(_phantom_grey(), level=40, width=80)


def _dicom_event(path: str, data: bytes, **extra: Any) -> dict[str, Any]:
    import base64

    return json_event(path, {"image": base64.b64encode(data).decode("ascii"), **extra})


def dicom_events(path: str, *, colour_ok: bool) -> Iterator[EventCase]:
    """DICOM requests (synthetic files: no dataset needed)."""
    import numpy as np
    from pydicom.uid import JPEGLSLossless

    from .dicom_files import secondary_capture, with_transfer_syntax, without_pixels

    ct = _phantom_ct()
    colour = np.stack([_phantom_grey().astype(np.uint8)] * 3, axis=-1)
    # The CT phantom is synthetic: a model with an out-of-distribution guard is asked to report, not refuse
    yield "ok_dicom_ct.json", _dicom_event(path, ct, ood="report"), _expect(200)
    yield ("ok_dicom_ct_raw_body.json",
           proxy_event(path, ct, headers={"Content-Type": "application/dicom"}, base64_body=True,
                       query={"explain": ["true"], "ood": ["report"]}), _expect(200))
    if colour_ok:
        yield "ok_dicom_colour.json", _dicom_event(path, secondary_capture(colour), ood="report"), _expect(200)
    else:
        yield "bad_dicom_colour.json", _dicom_event(path, secondary_capture(colour)), _expect(422, "unsupported_dicom_image")
    yield "bad_dicom_no_pixel_data.json", _dicom_event(path, without_pixels()), _expect(422, "dicom_without_pixel_data")
    yield "bad_dicom_truncated.json", _dicom_event(path, ct[:-2000]), _expect(422, "corrupt_dicom")
    yield ("bad_dicom_jpeg_ls.json", _dicom_event(path, with_transfer_syntax(ct, JPEGLSLossless)),
           _expect(415, "unsupported_transfer_syntax"))
    yield "bad_dicom_frame_out_of_range.json", _dicom_event(path, ct, frame=3), _expect(422, "frame_out_of_range")


def photograph_events(path: str) -> Iterator[EventCase]:
    """A portrait photograph (matplotlib's sample data): refused by the guard, or answered with "report"."""
    import base64

    import matplotlib

    photo = (Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").read_bytes()
    body = {"image": base64.b64encode(photo).decode("ascii")}
    yield "bad_photograph_out_of_distribution.json", json_event(path, body), _expect(422, "out_of_distribution")
    yield "ok_photograph_ood_report.json", json_event(path, {**body, "ood": "report"}), _expect(200)


def brain_static() -> Iterator[EventCase]:
    yield from image_bad_events("/brain/predict")
    yield from photograph_events("/brain/predict")
    yield from service_events("/brain")
    yield from job_events("/brain")
    yield ("bad_unknown_modality.json", json_event("/brain/predict", {"image": "AAAA", "modality": "pet"}),
           _expect(422, "invalid_request"))
    yield from dicom_events("/brain/predict", colour_ok=False)
    yield ("bad_dicom_modality_mismatch.json", _dicom_event("/brain/predict", _phantom_ct(), modality="mri"),
           _expect(422, "modality_mismatch"))


def brain_generated() -> Iterator[EventCase]:
    path = "/brain/predict"
    ct_tumor = _shared_image("brain", _first_test_path("brain", modality="ct", label="tumor"))
    mri_glioma = _shared_image("brain", _first_test_path("brain", modality="mri", label="glioma"))
    mri_healthy = _shared_image("brain", _first_test_path("brain", modality="mri", label="healthy"))
    yield "ok_ct_tumor.json", json_event(path, {"image": ct_tumor, "modality": "ct"}), _expect(200)
    yield "ok_mri_glioma_explain.json", json_event(path, {"image": mri_glioma, "modality": "mri", "explain": True}), _expect(200)
    yield "ok_mri_healthy_modality_predicted.json", json_event(path, {"image": mri_healthy}), _expect(200)
    # The second MRI source (224 px, stretched to a square): the model was trained and thresholded on both.
    mri_second_source = _shared_image("brain", _first_test_path("brain", modality="mri", label="meningioma",
                                                                source_dataset="nickparvar_training"))
    yield ("ok_mri_second_source_meningioma.json", json_event(path, {"image": mri_second_source, "modality": "mri"}),
           _expect(200))


def skin_static() -> Iterator[EventCase]:
    yield from image_bad_events("/skin/predict")
    yield from photograph_events("/skin/predict")
    yield from service_events("/skin")
    yield from job_events("/skin")
    yield ("bad_explain_not_boolean.json", json_event("/skin/predict", {"image": "AAAA", "explain": "yes"}),
           _expect(422, "invalid_request"))
    yield from dicom_events("/skin/predict", colour_ok=True)


def skin_generated() -> Iterator[EventCase]:
    path = "/skin/predict"
    ham = _shared_image("skin", _first_test_path("skin", source_dataset="HAM10000", label="melanoma"))
    isic = _shared_image("skin", _first_test_path("skin", source_dataset="ISIC2017", label="benign"))
    yield "ok_ham_melanoma.json", json_event(path, {"image": ham}), _expect(200)
    yield "ok_isic_benign_explain.json", json_event(path, {"image": isic, "explain": True}), _expect(200)
    # A brain slice is not a dermoscopy image: the guard refuses it
    brain_slice = _shared_image("brain", _first_test_path("brain", modality="mri", label="glioma"))
    yield "bad_brain_slice_out_of_distribution.json", json_event(path, {"image": brain_slice}), \
        _expect(422, "out_of_distribution")


STATIC: dict[str, Callable[[], Iterator[EventCase]]] = {
    "brain": brain_static,
    "skin": skin_static,
    "histopathology": histopathology_static,
    "leukemia": leukemia_static, "breast_survival": breast_survival_static}
GENERATED: dict[str, Callable[[], Iterator[EventCase]]] = {
    "brain": brain_generated,
    "skin": skin_generated,
    "histopathology": histopathology_generated,
    "leukemia": leukemia_generated, "breast_survival": breast_survival_generated}


def write_cases(folder: Path, cases: Iterator[EventCase], *, with_bodies: bool) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, event, expectation in cases:
        (folder / name).write_text(json.dumps(event, indent=1) + "\n")
        expected[name] = expectation
        if with_bodies and event.get("body"):
            (folder / name.replace(".json", ".body.json")).write_text(event["body"])
    (folder / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return len(expected)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--static", action="store_true", help="(re)write the committed events too")
    parser.add_argument("tasks", nargs="*", default=list(TASKS))
    args = parser.parse_args(argv)
    for task in args.tasks:
        if args.static and task in STATIC:
            count = write_cases(EVENTS_DIR / task, STATIC[task](), with_bodies=False)
            print(f"events/{task}/: {count} committed events")
        if task in GENERATED:
            count = write_cases(EVENTS_DIR / "generated" / task, GENERATED[task](), with_bodies=True)
            print(f"events/generated/{task}/: {count} events from ../shared/data")


if __name__ == "__main__":
    main()
