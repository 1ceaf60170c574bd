"""Jobs through the local API, as a user runs them: POST /brain/jobs over a prefix of the input bucket
(moto's server mode on 127.0.0.1, a local stand-in for S3), chunks invoked asynchronously through the
local Lambda Invoke API on the function's own pool, GET /brain/jobs/{id} until completed, results read
from the presigned URL, each answer checked against the synchronous route's."""

from __future__ import annotations

import csv
import sys

import pytest

from local.ports import free_port
from local.s3 import LOCAL_INPUT_BUCKET, s3_client

KEY = "jobs-test-key"
PREFIX = "batch/"


@pytest.fixture(scope="module")
def brain_images(shared_data):
    """Two slices of each MRI label of the first source's test split (healthy, three types, untyped tumour)."""
    with open(shared_data / "brain" / "manifest.csv") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "test" and row["modality"] == "mri"
                and row["source_dataset"] == "multimodal_ct_mri"]
    chosen = []
    for label in sorted({row["label"] for row in rows}):
        chosen += [row for row in rows if row["label"] == label][:2]
    return {f"{PREFIX}{i:02d}.jpg": (shared_data / "brain" / row["path"]).read_bytes() for i, row in enumerate(chosen)}


@pytest.fixture(scope="module")
def api(brain_images, tmp_path_factory):
    from local.running import LocalApi

    s3_port = free_port()
    served = LocalApi([sys.executable, "-m", "local.serve", "brain"],
                      env={"API_KEY": KEY, "ONCOSERVE_CONCURRENCY": "2", "ONCOSERVE_S3_PORT": str(s3_port)},
                      log_path=tmp_path_factory.mktemp("jobs") / "serve.log").start()
    bucket = s3_client(f"http://127.0.0.1:{s3_port}")
    for key, data in brain_images.items():
        bucket.put_object(Bucket=LOCAL_INPUT_BUCKET, Key=key, Body=data)
    bucket.put_object(Bucket=LOCAL_INPUT_BUCKET, Key=f"{PREFIX}zz-notes.txt", Body=b"not an image")
    yield served
    served.stop()


@pytest.fixture(scope="module")
def client(api):
    from oncoserve import Client

    with Client(api.url, KEY) as client:
        yield client


def test_a_batch_job_answers_every_object_as_the_route_does(client, brain_images):
    job = client.submit_job("brain", "predict", {"bucket": LOCAL_INPUT_BUCKET, "prefix": PREFIX},
                            options={"modality": "mri", "ood": "report"}, chunk_size=3, max_concurrency=2)
    assert job["status"] == "running" and job["items"] == 11
    assert job["chunks"] == {"total": 4, "done": 0} and job["max_concurrency"] == 2
    done = client.wait_for_job("brain", job["id"], timeout_s=240, poll_s=0.5)
    assert done["chunks"] == {"total": 4, "done": 4}
    result = client.job_result("brain", done)
    assert [item["key"] for item in result["items"]] == [*sorted(brain_images), f"{PREFIX}zz-notes.txt"]
    for item in result["items"][:-1]:
        direct = client.brain(brain_images[item["key"]], modality="mri", ood="report")
        assert item["status"] == 200
        assert (item["answer"]["label"], item["answer"]["probabilities"]) == (direct["label"], direct["probabilities"])
    assert result["items"][-1]["status"] == 415 and result["items"][-1]["error"]["code"] == "not_an_image"
    labels = [item["answer"]["label"] for item in result["items"][:-1]]
    assert done["summary"] == {"items": 11, "succeeded": 10, "failed": 1, "errors": {"not_an_image": 1},
                               "labels": {label: labels.count(label) for label in set(labels)}}
    assert result["model"]["version"] == client.model("brain")["model"]["version"]


@pytest.mark.parametrize("body, status, code", [
    ({"route": "predict", "inputs": {"bucket": LOCAL_INPUT_BUCKET, "prefix": "nothing-here/"}}, 422, "no_job_inputs"),
    ({"route": "predict", "inputs": {"bucket": "someone-elses", "prefix": PREFIX}}, 403, "s3_access_denied"),
    ({"route": "predict", "inputs": {"bucket": LOCAL_INPUT_BUCKET}}, 422, "invalid_request"),
    ({"route": "predict", "inputs": {"bucket": LOCAL_INPUT_BUCKET, "prefix": PREFIX}, "options": {"modality": "pet"}}, 422, "invalid_request"),
    ({"route": "predict", "inputs": {"bucket": LOCAL_INPUT_BUCKET, "prefix": PREFIX}, "options": {"image": "x"}}, 422, "invalid_request"),
    ({"route": "slide", "inputs": {"bucket": LOCAL_INPUT_BUCKET, "prefix": PREFIX}}, 422, "invalid_request"),
])
def test_a_job_that_cannot_run_is_refused_before_it_starts(client, body, status, code):
    from oncoserve import ApiError

    with pytest.raises(ApiError) as refused:
        client._post("/brain/jobs", body)
    assert (refused.value.status, refused.value.code) == (status, code)


@pytest.mark.parametrize("job_id", ["0" * 32, "not-a-job-id"])
def test_an_unknown_job_is_404(client, job_id):
    from oncoserve import ApiError

    with pytest.raises(ApiError) as refused:
        client.job("brain", job_id)
    assert (refused.value.status, refused.value.code) == (404, "job_not_found")


def test_job_routes_need_the_api_key(api):
    import httpx

    assert httpx.post(f"{api.url}/brain/jobs", json={}).status_code == 403
    assert httpx.get(f"{api.url}/brain/jobs/{'0' * 32}").status_code == 403
