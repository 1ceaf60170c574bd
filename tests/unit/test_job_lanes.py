"""Job planning, lanes and results (oncoserve_runtime.jobs) on moto's in-process S3, with the self-
invocations captured instead of sent: which chunk runs after which, what is written, what is answered."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from oncoserve_runtime import jobs, s3_objects
from oncoserve_runtime.errors import ApiError, UnprocessableEntityError, UnsupportedMediaTypeError, UpstreamFetchError
from oncoserve_runtime.routes import Route

BUCKET = "oncoserve-input-test"
SCHEMA = {"type": "object", "properties": {"s3": {"type": "object"}, "chunk": {"type": "object"},
                                           "ood": {"enum": ["report"]}}, "required": ["s3"], "additionalProperties": False}
MODEL = SimpleNamespace(info={"name": "fake", "version": "0.0.0"})


CALLS: list[str] = []


def label_by_key(body, _model):
    key = body["s3"]["key"]
    CALLS.append(key)
    if key.endswith(".bad"):
        raise UnprocessableEntityError("corrupt_image", "damaged")
    return {"label": "odd" if int(key.rsplit("/", 1)[1].split(".")[0]) % 2 else "even", "ood_option": body.get("ood"),
            "heatmap_png": "a picture", "explanation": {"peak_cell": [1, 2], "heatmap_png": "another"}}


def part_answer(body, _model):
    index = body["chunk"]["index"]
    if body["s3"]["key"] == "slides/broken.tif" and index == 1:
        raise UnsupportedMediaTypeError("not_a_slide", "damaged tiles")
    return {"part": index, "of": body["chunk"]["count"]}


ROUTES = {"predict": Route("/fake/predict", SCHEMA, label_by_key, job_chunk_size=(2, 5)),
          "slide": Route("/fake/slide", SCHEMA, part_answer,
                         merge_chunks=lambda answers: {"parts": sorted(a["part"] for a in answers)})}


@pytest.fixture
def bucket(monkeypatch):
    from moto import mock_aws

    with mock_aws():
        monkeypatch.setenv("ONCOSERVE_INPUT_BUCKET", BUCKET)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        s3_objects._client.cache_clear()
        client = s3_objects._client()
        client.create_bucket(Bucket=BUCKET)
        yield client
        s3_objects._client.cache_clear()


@pytest.fixture
def queued(monkeypatch):
    """The asynchronous self-invocations a job asks for, in order, instead of Lambda's queue."""
    events: list[dict] = []
    monkeypatch.setattr(jobs, "invoke_async", events.append)
    return events


def put(bucket, *keys):
    for key in keys:
        bucket.put_object(Bucket=BUCKET, Key=key, Body=b"x")


def deliver(event, invocation: str | None = None):
    """One delivery of ``event`` by Lambda: a fresh request id, unless it is a retry of ``invocation``."""
    import uuid

    return jobs.run_job_step(event, "fake", ROUTES, MODEL, invocation or str(uuid.uuid4()))


def step(event) -> tuple:
    payload = event[jobs.JOB_EVENT]
    return (payload["step"], payload["chunk"]) if "chunk" in payload else (payload["step"],)


def run(queued, routes=ROUTES):
    """Run the queued invocations the way Lambda would, oldest first, until none is left."""
    ran = []
    while queued:
        event = queued.pop(0)
        ran.append(step(event))
        assert deliver(event)["ran"]
    return ran


def test_a_batch_runs_in_lanes_and_every_answer_lands_in_the_result(bucket, queued):
    put(bucket, *(f"batch/{n}.png" for n in range(7)), "batch/7.bad", "batch/folder/")
    answer = jobs.submit_job("fake", {"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"},
                                      "options": {"ood": "report"}, "chunk_size": 2, "max_concurrency": 2}, ROUTES)
    job = answer["job"]
    assert (job["status"], job["items"], job["chunks"], job["max_concurrency"]) == ("running", 8, {"total": 4, "done": 0}, 2)
    assert [step(event) for event in queued] == [("start",)]  # one invocation starts the lanes
    # Two lanes, not four invocations at once: lane 0 runs chunks 0, 2; lane 1 chunks 1, 3; the last in, finish.
    assert run(queued) == [("start",), ("chunk", 0), ("chunk", 1), ("chunk", 2), ("chunk", 3), ("finish",)]
    status = jobs.job_status("fake", job["id"])["job"]
    assert status["status"] == "completed" and status["chunks"] == {"total": 4, "done": 4}
    assert status["summary"] == {"items": 8, "succeeded": 7, "failed": 1, "labels": {"even": 4, "odd": 3},
                                 "errors": {"corrupt_image": 1}}
    assert status["result"]["s3"] == {"bucket": BUCKET, "key": f"jobs/fake/{job['id']}/result.json"}
    result = json.loads(bucket.get_object(Bucket=BUCKET, Key=status["result"]["s3"]["key"])["Body"].read())
    assert [item["key"] for item in result["items"]] == [*(f"batch/{n}.png" for n in range(7)), "batch/7.bad"]
    # No pictures in a job's answers: 10,000 of them would be gigabytes.
    assert result["items"][0] == {"key": "batch/0.png", "status": 200,
                                  "answer": {"label": "even", "ood_option": "report", "explanation": {"peak_cell": [1, 2]}}}
    assert result["items"][-1]["status"] == 422 and result["items"][-1]["error"]["code"] == "corrupt_image"


def test_whole_numbers_written_as_floats_count_as_integers(bucket, queued):
    # JSON Schema's "integer" admits 2.0 (Schemathesis found the 500 this once was).
    put(bucket, *(f"batch/{n}.png" for n in range(3)))
    job = jobs.submit_job("fake", {"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}, "chunk_size": 2.0,
                                   "max_concurrency": 1.0}, ROUTES)["job"]
    assert job["chunks"]["total"] == 2 and job["max_concurrency"] == 1
    slide = jobs.submit_job("fake", {"route": "slide", "inputs": {"bucket": BUCKET, "keys": ["batch/0.png"]}, "chunks": 2.0},
                            ROUTES)["job"]
    assert slide["chunks"]["total"] == 2
    assert sorted(run(queued)) == sorted([("start",), ("start",), ("chunk", 0), ("chunk", 1), ("chunk", 0), ("chunk", 1),
                                          ("finish",), ("finish",)])


def test_a_running_job_reports_its_progress(bucket, queued):
    put(bucket, *(f"batch/{n}.png" for n in range(5)))
    job = jobs.submit_job("fake", {"route": "predict", "inputs": {"bucket": BUCKET, "keys": ["batch/0.png", "batch/1.png",
                                                                                             "batch/2.png"]},
                                   "chunk_size": 1}, ROUTES)["job"]
    deliver(queued.pop(0))  # start
    deliver(queued.pop(0))  # chunk 0
    status = jobs.job_status("fake", job["id"])["job"]
    assert status["status"] == "running" and status["chunks"] == {"total": 3, "done": 1} and "result" not in status


def test_each_slide_is_split_into_parts_and_merged_or_failed_as_a_whole(bucket, queued):
    put(bucket, "slides/good.tif", "slides/broken.tif")
    job = jobs.submit_job("fake", {"route": "slide", "inputs": {"bucket": BUCKET, "prefix": "slides/"}, "chunks": 3,
                                   "max_concurrency": 100}, ROUTES)["job"]
    assert job["chunks"]["total"] == 6 and job["max_concurrency"] == 6
    run(queued)
    result_key = jobs.job_status("fake", job["id"])["job"]["result"]["s3"]["key"]
    items = json.loads(bucket.get_object(Bucket=BUCKET, Key=result_key)["Body"].read())["items"]
    assert items == [{"key": "slides/broken.tif", "status": 415, "error": {"code": "not_a_slide", "message": "damaged tiles"}},
                     {"key": "slides/good.tif", "status": 200, "answer": {"parts": [0, 1, 2]}}]


def test_the_deployments_cap_bounds_the_lanes(bucket, queued, monkeypatch):
    monkeypatch.setenv("ONCOSERVE_JOB_MAX_CONCURRENCY", "3")
    put(bucket, *(f"batch/{n}.png" for n in range(10)))
    job = jobs.submit_job("fake", {"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}, "chunk_size": 1,
                                   "max_concurrency": 1000}, ROUTES)["job"]
    assert job["max_concurrency"] == 3
    deliver(queued.pop(0))
    assert [step(event) for event in queued] == [("chunk", 0), ("chunk", 1), ("chunk", 2)]


@pytest.mark.parametrize("body, code", [
    ({"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "none/"}}, "no_job_inputs"),
    ({"route": "predict", "inputs": {"bucket": "elsewhere", "keys": ["a.png"]}}, "s3_access_denied"),
    ({"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/", "keys": ["a.png"]}}, "invalid_request"),
    ({"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}, "options": {"ood": "refuse-all"}}, "invalid_request"),
    ({"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}, "options": {"s3": {}}}, "invalid_request"),
    ({"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}, "chunk_size": 6}, "invalid_request"),  # route's most: 5
    ({"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}, "chunks": 4}, "invalid_request"),
    ({"route": "slide", "inputs": {"bucket": BUCKET, "prefix": "batch/"}, "chunk_size": 4}, "invalid_request"),
])
def test_a_job_that_cannot_run_starts_nothing(bucket, queued, body, code):
    put(bucket, "batch/0.png")
    with pytest.raises(ApiError) as refused:
        jobs.submit_job("fake", body, ROUTES)
    assert refused.value.code == code and queued == []
    assert bucket.list_objects_v2(Bucket=BUCKET, Prefix="jobs/")["KeyCount"] == 0


def test_an_option_the_route_refuses_is_named_as_the_jobs_field(bucket, queued):
    put(bucket, "batch/0.png")
    with pytest.raises(ApiError) as refused:
        jobs.submit_job("fake", {"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"},
                                 "options": {"ood": "always"}}, ROUTES)
    assert refused.value.details["field"] == "body.options.ood" and "body.options.ood" in refused.value.message


def test_a_second_delivery_of_a_chunk_neither_reruns_it_nor_doubles_its_lane(bucket, queued):
    put(bucket, *(f"batch/{n}.png" for n in range(4)))
    jobs.submit_job("fake", {"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}, "chunk_size": 1,
                             "max_concurrency": 2}, ROUTES)
    start = queued.pop(0)
    deliver(start)
    deliver(start)  # delivered twice: the lanes are queued once
    assert [step(event) for event in queued] == [("chunk", 0), ("chunk", 1)]
    first = queued.pop(0)
    CALLS.clear()
    deliver(first)
    deliver(first)
    assert CALLS == ["batch/0.png"] and [step(event) for event in queued] == [("chunk", 1), ("chunk", 2)]


def test_a_step_that_lambda_did_not_take_can_be_queued_by_the_retry(bucket, queued, monkeypatch):
    put(bucket, "batch/0.png", "batch/1.png")
    jobs.submit_job("fake", {"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}, "chunk_size": 1}, ROUTES)
    start = queued.pop(0)
    taken = queued.append

    def refuse_once(event):
        monkeypatch.setattr(jobs, "invoke_async", taken)
        raise UpstreamFetchError("job_start_failed", "Lambda said no")

    monkeypatch.setattr(jobs, "invoke_async", refuse_once)
    with pytest.raises(ApiError):  # the invocation fails, so Lambda retries it, under the same request id
        deliver(start, "request-1")
    deliver(start, "request-1")
    assert sorted(step(event) for event in queued) == [("chunk", 0), ("chunk", 1)]
    deliver(start, "request-2")  # another delivery of the same event: queues nothing again
    assert len(queued) == 2


def test_a_failed_start_is_a_502_and_leaves_nothing_running(bucket, monkeypatch):
    def refuse(event):
        raise UpstreamFetchError("job_start_failed", "Lambda said no")

    monkeypatch.setattr(jobs, "invoke_async", refuse)
    put(bucket, "batch/0.png")
    with pytest.raises(ApiError) as refused:
        jobs.submit_job("fake", {"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}}, ROUTES)
    assert (refused.value.status, refused.value.code) == (502, "job_start_failed")


def test_more_objects_than_a_job_covers_is_413(bucket, queued, monkeypatch):
    monkeypatch.setattr(jobs, "MAX_JOB_ITEMS", 3)
    put(bucket, *(f"batch/{n}.png" for n in range(4)))
    with pytest.raises(ApiError) as refused:
        jobs.submit_job("fake", {"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}}, ROUTES)
    assert (refused.value.status, refused.value.code) == (413, "too_many_job_items")
    with pytest.raises(ApiError) as refused:  # 2 slides in 2 parts: 4 invocations, over 3
        jobs.submit_job("fake", {"route": "slide", "inputs": {"bucket": BUCKET, "keys": ["batch/0.png", "batch/1.png"]},
                                 "chunks": 2}, ROUTES)
    assert (refused.value.status, refused.value.code) == (413, "too_many_job_items")


@pytest.mark.parametrize("job_id", ["0" * 32, "../../uploads/x", "", "0" * 32 + "\n"])
def test_an_unknown_or_malformed_job_id_is_not_found(bucket, job_id):
    with pytest.raises(ApiError) as refused:
        jobs.job_status("fake", job_id)
    assert (refused.value.status, refused.value.code) == (404, "job_not_found")


def test_an_event_for_another_function_or_an_expired_job_runs_nothing(bucket, queued):
    put(bucket, "batch/0.png")
    job = jobs.submit_job("fake", {"route": "predict", "inputs": {"bucket": BUCKET, "prefix": "batch/"}}, ROUTES)["job"]
    deliver(queued.pop())  # start
    event = queued.pop()
    assert not deliver({jobs.JOB_EVENT: {**event[jobs.JOB_EVENT], "folder": "other"}})["ran"]
    assert not deliver({jobs.JOB_EVENT: {**event[jobs.JOB_EVENT], "chunk": 5}})["ran"]
    assert not deliver({jobs.JOB_EVENT: {**event[jobs.JOB_EVENT], "id": job["id"] + "\n"}})["ran"]
    bucket.delete_object(Bucket=BUCKET, Key=f"jobs/fake/{job['id']}/job.json")  # the lifecycle rule's doing
    assert not deliver(event)["ran"]
    assert queued == []
