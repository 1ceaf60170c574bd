"""POST /histopathology/slide on generated pyramidal TIFFs (one test patient's patches at their own
coordinates, on glass), read from moto's server mode on 127.0.0.1 (a local stand-in for S3)."""

from __future__ import annotations

import base64
import json
import sys

import numpy as np
import pytest

from conftest import FakeLambdaContext, load_function_app
from local.events import json_event
from local.s3 import LocalS3
from oncoserve_runtime import s3_objects
from bench.synthetic_slides import patient_patches, write_slide

PATIENT = 8975  # a test-split patient with 132 patches, both classes


@pytest.fixture(scope="module")
def app():
    return load_function_app("histopathology")


@pytest.fixture(scope="module")
def patches(shared_data):
    found = patient_patches(shared_data, PATIENT)
    assert {p.label for p in found} == {0, 1} and len(found) >= 100
    return found


@pytest.fixture(scope="module")
def bucket(patches, tmp_path_factory):
    """The input bucket holding: a 2-level pyramid, a single level at 2 µm/px, one without MPP."""
    folder = tmp_path_factory.mktemp("slides")
    with LocalS3() as s3, pytest.MonkeyPatch.context() as env:
        for name, value in s3.function_env.items():
            env.setenv(name, value)
        s3_objects._client.cache_clear()
        for key, options in {"pyramid.tif": {}, "flat.tif": {"pyramid": False},
                             "no-mpp.tif": {"state_mpp": False}}.items():
            write_slide(folder / key, patches, **options)
            s3.client().upload_file(str(folder / key), s3.bucket, key)
        s3.client().put_object(Bucket=s3.bucket, Key="photo.png", Body=b"\x89PNG\r\n\x1a\n" + bytes(100))
        for key, data in odd_tiffs(folder).items():
            s3.client().put_object(Bucket=s3.bucket, Key=key, Body=data)
        yield s3
        s3_objects._client.cache_clear()


def odd_tiffs(folder) -> dict[str, bytes]:
    """TIFFs a client might send by mistake: too coarse, too small, no image, damaged tiles."""
    import tifffile

    def tiff(pixels, mpp: float) -> bytes:
        path = folder / "odd.tif"
        tifffile.imwrite(path, pixels, tile=(64, 64), compression="zlib", photometric="rgb",
                         resolution=(1e4 / mpp, 1e4 / mpp), resolutionunit="CENTIMETER")
        return path.read_bytes()

    noise = np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    damaged = bytearray(tiff(noise, 1.0))
    damaged[len(damaged) // 2:len(damaged) // 2 + 4000] = bytes(4000)  # zeros over compressed tile data
    return {"coarse.tif": tiff(noise, 8.0), "tiny.tif": tiff(noise[:40, :40], 4.0),
            "empty.tif": b"II*\x00\x00\x00\x00\x00", "damaged.tif": bytes(damaged)}


def call(app, route: str, body: dict) -> tuple[int, dict]:
    response = app.lambda_handler(json_event(route, body), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def slide(app, bucket, key: str, **options) -> tuple[int, dict]:
    return call(app, "/histopathology/slide", {"s3": {"bucket": bucket.bucket, "key": key}, **options})


@pytest.fixture(scope="module")
def patch_labels(app, patches):
    labels = {}
    for patch in patches:
        body = {"image": base64.b64encode(patch.path.read_bytes()).decode(), "ood": "report"}
        status, answer = call(app, "/histopathology/predict", body)
        assert status == 200, answer
        labels[(patch.row, patch.col)] = answer["label"]
    return labels


def test_the_pyramid_level_at_4_um_is_read_and_glass_is_never_scored(app, bucket, patches):
    status, answer = slide(app, bucket, "pyramid.tif", ood="report")
    assert status == 200, answer
    assert answer["slide"] == {**answer["slide"], "mpp": 2.0, "mpp_source": "slide", "level": 1, "level_mpp": 4.0}
    tiles = answer["tiles"]
    # The dataset has near-empty patches: the region route skips them as background, and so does the slide.
    assert 0.95 * len(patches) <= tiles["scored"] <= len(patches)
    assert tiles["tissue"] + tiles["glass"] > 5 * len(patches)  # a sparse slide: mostly glass
    assert answer["tissue_area_mm2"] == pytest.approx(tiles["tissue"] * 0.04)
    assert answer["top_regions"]
    for region in answer["top_regions"]:  # boxes in level-0 pixels: 50 px at 4 µm/px = 100 px at 2 µm/px
        assert region["width"] == 100 and (region["y"] // 100, region["x"] // 100) in {(p.row, p.col) for p in patches}


def test_each_tissue_tile_agrees_with_the_patch_route_and_every_idc_patch_is_found(app, bucket, patches, patch_labels):
    status, answer = slide(app, bucket, "pyramid.tif", ood="report")
    assert status == 200
    scored = {(row, col): p for row, values in enumerate(answer["grid"]["probabilities"])
              for col, p in enumerate(values) if p is not None}
    assert len(scored) == answer["tiles"]["scored"]
    assert set(scored) <= set(patch_labels)  # glass is never scored: every scored tile is a patch
    assert {(p.row, p.col) for p in patches if p.label == 1} <= set(scored)  # every IDC patch is found
    threshold = answer["threshold"]
    # The grid rounds p to 4 decimals: a tile within 1e-4 of the threshold may round across it.
    agree = [("idc" if p >= threshold else "non_idc") == patch_labels[cell] or abs(p - threshold) < 1e-4
             for cell, p in scored.items()]
    assert np.mean(agree) >= 0.99, np.mean(agree)
    assert answer["tiles"]["idc_positive"] == sum(patch_labels[c] == "idc" for c in scored)


def test_a_single_level_slide_is_resampled_to_the_same_answer(app, bucket):
    _, pyramid = slide(app, bucket, "pyramid.tif", ood="report")
    status, flat = slide(app, bucket, "flat.tif", ood="report")
    assert status == 200 and flat["slide"]["level"] == 0 and flat["slide"]["level_mpp"] == 2.0
    for key in ("label", "tiles", "idc_area_mm2", "top_regions"):
        assert flat[key] == pyramid[key], key


def test_a_slide_without_mpp_needs_it_from_the_request(app, bucket):
    status, answer = slide(app, bucket, "no-mpp.tif")
    assert (status, answer["error"]["code"]) == (422, "slide_without_mpp")
    status, answer = slide(app, bucket, "no-mpp.tif", mpp=2.0, ood="report")
    assert status == 200 and answer["slide"]["mpp_source"] == "request" and answer["slide"]["level"] == 1


SAME_IN_CHUNKS = ("label", "probabilities", "threshold", "slide", "tiles", "idc_fraction_of_tissue", "top_regions")


def test_four_chunks_merged_are_the_single_requests_answer(app, bucket):
    from slide_merge import merge_slide_chunks  # functions/histopathology/, importable once the app is loaded

    _, whole = slide(app, bucket, "pyramid.tif", ood="report")
    chunks = [slide(app, bucket, "pyramid.tif", ood="report", chunk={"index": i, "count": 4})[1] for i in range(4)]
    assert all("heatmap_png" not in chunk for chunk in chunks)
    assert all(sum(v is not None for row in c["grid"]["probabilities"] for v in row) == c["tiles"]["scored"] for c in chunks)
    merged = merge_slide_chunks(list(reversed(chunks)))
    assert {k: merged[k] for k in SAME_IN_CHUNKS} == {k: whole[k] for k in SAME_IN_CHUNKS}
    assert merged["grid"] == whole["grid"]
    assert merged["tissue_area_mm2"] == pytest.approx(whole["tissue_area_mm2"])
    status, answer = slide(app, bucket, "pyramid.tif", chunk={"index": 4, "count": 4})
    assert (status, answer["error"]["code"]) == (422, "invalid_request")
    status, answer = slide(app, bucket, "pyramid.tif", ood="report", chunk={"index": 1.0, "count": 4.0})  # "integer" admits 1.0
    assert status == 200 and answer["grid"]["band"] == chunks[1]["grid"]["band"]
    with pytest.raises(ValueError, match="do not cover"):
        merge_slide_chunks(chunks[:3])


@pytest.mark.parametrize("key, status, code", [("coarse.tif", 422, "slide_too_coarse"), ("tiny.tif", 422, "image_too_small"),
                                               ("empty.tif", 415, "not_a_slide"), ("damaged.tif", 415, "not_a_slide")])
def test_a_coarse_tiny_empty_or_damaged_tiff_is_a_client_error(app, bucket, key, status, code):
    got, answer = slide(app, bucket, key)
    assert (got, answer["error"]["code"]) == (status, code)


def test_a_slide_too_coarse_by_the_requests_mpp_is_refused_rather_than_upsampled(app, bucket):
    status, answer = slide(app, bucket, "no-mpp.tif", mpp=8.0)
    assert (status, answer["error"]["code"]) == (422, "slide_too_coarse")


def test_not_a_slide_and_another_bucket_are_refused(app, bucket):
    status, answer = slide(app, bucket, "photo.png")
    assert (status, answer["error"]["code"]) == (415, "not_a_slide")
    status, answer = call(app, "/histopathology/slide", {"s3": {"bucket": "elsewhere", "key": "pyramid.tif"}})
    assert (status, answer["error"]["code"]) == (403, "s3_access_denied")


def test_a_slide_job_spreads_over_four_environments_and_merges_to_the_single_requests_map(patches, tmp_path):
    # POST /histopathology/jobs splits the slide into 4 parts, each an asynchronous invocation through the
    # local Lambda Invoke API on the function's pool (4 environments: Lambda's concurrency in miniature).
    from local.running import LocalApi
    from oncoserve import Client

    write_slide(tmp_path / "slide.tif", patches)
    served = LocalApi([sys.executable, "-m", "local.serve", "histopathology"],
                      env={"API_KEY": "slide-test-key", "ONCOSERVE_CONCURRENCY": "4"}, log_path=tmp_path / "serve.log").start()
    try:
        with Client(served.url, "slide-test-key") as client:
            reference = client.upload("histopathology", tmp_path / "slide.tif")
            whole = client.slide(reference, ood="report")
            job = client.submit_job("histopathology", "slide", {"bucket": reference["bucket"], "keys": [reference["key"]]},
                                    options={"ood": "report"}, chunks=4, max_concurrency=4)
            assert job["chunks"]["total"] == 4 and job["max_concurrency"] == 4
            done = client.wait_for_job("histopathology", job["id"], timeout_s=240, poll_s=0.5)
            merged = client.job_result("histopathology", done)["items"][0]["answer"]
        assert done["summary"] == {"items": 1, "succeeded": 1, "failed": 0, "labels": {whole["label"]: 1}, "errors": {}}
        assert merged["chunks"] == 4 and merged["grid"] == whole["grid"]
        assert {k: merged[k] for k in SAME_IN_CHUNKS} == {k: whole[k] for k in SAME_IN_CHUNKS}
        assert len(served.runtime_processes()) >= 4  # four environments ran the parts side by side
    finally:
        served.stop()
