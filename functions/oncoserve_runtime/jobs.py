"""Batch and whole-slide jobs on Lambda's own concurrency, with S3 as the only state.

``POST <prefix>/jobs`` plans a job over objects of the input bucket (a prefix or a list of keys),
writes the plan, queues its start and answers 202 at once; ``GET <prefix>/jobs/{id}`` reports
progress and, once done, where the results are. Everything lives under ``jobs/<prefix>/<id>/`` of
the input bucket:

- ``job.json``: the plan, the chunks of work, written once at submission;
- ``queued/…``: one marker per step queued, so that each step is queued once however often Lambda
  delivers the event that queues it (at least once, by its contract);
- ``chunks/<n>.json``: one per chunk, written by the invocation that ran it (a second delivery finds it);
- ``result.json`` (every object's answer, without pictures, or its error) and ``summary.json`` (the
  counts), written by the ``finish`` step once every chunk is in.

Fan-out: the function invokes *itself* asynchronously (``InvocationType=Event``), one invocation per
chunk, in at most ``max_concurrency`` lanes: lane *i* runs chunks *i*, *i + L*, *i + 2L*, … each
invocation handing its lane's next chunk to a new one when it is done. No queue or scheduler of ours:
Lambda's async queue holds the invocations, retries a failed one twice and absorbs throttling, and
the lanes bound how much of the account's concurrency one job takes.

An item route (``predict``, ``region``) groups objects ``chunk_size`` to a chunk (``Route.job_chunk_size``
bounds it, so that a chunk ends well inside the timeout); a route that scores one object in parts
(``slide``, with ``Route.merge_chunks``) splits each object into ``chunks`` parts, one chunk each, and
the parts' answers are merged into the object's.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Mapping

from .errors import ApiError, NotFoundError, PayloadTooLargeError, UnprocessableEntityError, UpstreamFetchError
from .model import ModelBundle
from .observability import logger
from .requests import validate_body
from .routes import Route
from .s3_objects import (claim, count_keys, get_json, input_bucket, list_keys, only_input_bucket, presigned_download,
                         put_json)

JOB_EVENT = "oncoserve_job"  # a worker event is {"oncoserve_job": {"folder", "id", "step", "chunk"?}}
JOB_ID_PATTERN = "^[0-9a-f]{32}$"
MAX_JOB_ITEMS = 10_000  # objects; and units of work (objects x parts): the plan every worker reads stays small
MAX_PARTS = 256  # parts one slide is scored in
DEFAULT_PARTS = 16  # ~1,000 tiles (~0.5 s) each for a 15,000-tile slide
DEFAULT_MAX_CONCURRENCY = 16
_RESERVED_OPTIONS = ("s3", "image", "url", "chunk")  # what the job itself sets in each item's request
_BULKY = "heatmap_png"  # a picture per object would make a result of gigabytes: a job keeps the numbers
_READERS = 16  # parallel S3 reads when a job's chunks are gathered


def max_concurrency_limit() -> int:
    """The deployment's cap on one job's lanes (template parameter ``JobMaxConcurrency``)."""
    return max(1, int(os.environ.get("ONCOSERVE_JOB_MAX_CONCURRENCY", DEFAULT_MAX_CONCURRENCY)))


def _key(folder: str, job_id: str, name: str) -> str:
    return f"jobs/{folder}/{job_id}/{name}"


def _chunk_key(folder: str, job_id: str, index: int) -> str:
    return _key(folder, job_id, f"chunks/{index:05d}.json")


@lru_cache(maxsize=1)
def _lambda_client() -> Any:
    import boto3  # only jobs pay for the import
    from botocore.config import Config

    # No client-side retries: a retried Invoke whose first attempt did reach Lambda would queue twice.
    return boto3.client("lambda", config=Config(connect_timeout=5, read_timeout=10, retries={"total_max_attempts": 1}))


def invoke_async(payload: dict[str, Any]) -> None:
    """Queue one asynchronous invocation of this function (``AWS_LAMBDA_FUNCTION_NAME``, set by Lambda)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _lambda_client().invoke(FunctionName=os.environ["AWS_LAMBDA_FUNCTION_NAME"], InvocationType="Event",
                                Payload=json.dumps(payload).encode())
    except (BotoCoreError, ClientError, KeyError) as exc:
        logger.warning("could not queue a job invocation", extra={"reason": type(exc).__name__})
        raise UpstreamFetchError("job_start_failed", "Lambda did not take the job's invocation; try again.") from None


def _event(job: Mapping[str, Any], step: str, chunk: int | None = None) -> dict[str, Any]:
    return {JOB_EVENT: {"folder": job["folder"], "id": job["id"], "step": step,
                        **({"chunk": chunk} if chunk is not None else {})}}


def _queue_once(job: Mapping[str, Any], step: str, chunk: int | None, invocation: str) -> None:
    """Queue a step of the job unless another invocation did: Lambda delivers an event at least once,
    and a delivery that queued the next step twice would double the rest of its lane. Each step is
    claimed by a marker object that S3's conditional write lets one writer create, holding the id of
    the invocation that claimed it; Lambda retries a failed invocation under the same id, so a retry
    queues what its first attempt claimed but may not have queued (a refused invoke, a timeout)."""
    marker = _key(job["folder"], job["id"], f"queued/{step}" + ("" if chunk is None else f"-{chunk:05d}"))
    if claim(marker, invocation):
        invoke_async(_event(job, step, chunk))


def _invalid(field: str, rule: str, message: str) -> UnprocessableEntityError:
    return UnprocessableEntityError("invalid_request", message, details={"field": field, "rule": rule})


def _job_keys(inputs: dict[str, Any]) -> list[str]:
    """The objects a job covers: the keys given, or every object under the prefix (S3's order)."""
    if ("prefix" in inputs) == ("keys" in inputs):
        raise _invalid("body.inputs", "prefix_or_keys", "body.inputs names either a prefix or keys, not both or neither")
    if "keys" in inputs:
        only_input_bucket(inputs["bucket"])
        keys = list(dict.fromkeys(inputs["keys"]))
    else:
        keys = list_keys(inputs, MAX_JOB_ITEMS)
    if len(keys) > MAX_JOB_ITEMS:
        raise PayloadTooLargeError("too_many_job_items", f"A job covers at most {MAX_JOB_ITEMS} objects; split it.")
    if not keys:
        raise UnprocessableEntityError("no_job_inputs", "No object in the input bucket under that prefix.")
    return keys


def _item_body(options: Mapping[str, Any], bucket: str, unit: Mapping[str, Any], parts: int | None) -> dict[str, Any]:
    """The request a job sends its route for one unit of work: the job's options and the object."""
    body = {**options, "s3": {"bucket": bucket, "key": unit["key"]}}
    if "part" in unit:
        body["chunk"] = {"index": unit["part"], "count": parts}
    return body


def _check_options(route: Route, body: dict[str, Any]) -> None:
    """The options as the route will check each object's request, named as the job's fields."""
    try:
        validate_body(body, route.schema or {})
    except UnprocessableEntityError as err:
        field = str((err.details or {}).get("field", "body"))
        renamed = field.replace("body.", "body.options.", 1) if field.startswith("body.") else field
        raise _invalid(renamed, str((err.details or {}).get("rule", "schema")),
                       err.message.replace(field, renamed)) from None


def _plan_chunks(route: Route, body: dict[str, Any], keys: list[str]) -> tuple[list[list[dict[str, Any]]], int | None]:
    """(chunks of units of work, parts per object or None): objects grouped ``chunk_size`` to a
    chunk, or (a route that scores one object in parts) each object split into ``chunks`` parts."""
    if route.merge_chunks:
        if "chunk_size" in body:
            raise _invalid("body.chunk_size", "not_for_route", f"body.chunk_size is for routes that take objects whole; "
                           f"{route.name} scores each object in body.chunks parts")
        parts = int(body.get("chunks", DEFAULT_PARTS))  # JSON Schema's "integer" takes 16.0 too
        if len(keys) * parts > MAX_JOB_ITEMS:
            raise PayloadTooLargeError("too_many_job_items", f"{len(keys)} objects in {parts} parts are over the "
                                       f"{MAX_JOB_ITEMS} invocations one job makes; split it.")
        return [[{"key": key, "part": part}] for key in keys for part in range(parts)], parts
    if "chunks" in body:
        raise _invalid("body.chunks", "not_for_route", f"body.chunks is for a route that scores an object in parts; "
                       f"{route.name} takes body.chunk_size objects an invocation")
    default, most = route.job_chunk_size
    size = int(body.get("chunk_size", default))
    if size > most:
        raise _invalid("body.chunk_size", "maximum", f"body.chunk_size must be at most {most} for {route.name} "
                       "(a chunk must finish well inside the function's timeout)")
    return [[{"key": key} for key in keys[start:start + size]] for start in range(0, len(keys), size)], None


def submit_job(folder: str, body: dict[str, Any], routes: Mapping[str, Route]) -> dict[str, Any]:
    """Plan the job ``body`` asks for over ``routes`` (by name), store the plan and queue its start."""
    route = routes[body["route"]]
    options = body.get("options", {})
    reserved = sorted(set(options) & set(_RESERVED_OPTIONS))
    if reserved:
        raise _invalid("body.options", "reserved", f"body.options may not set {', '.join(reserved)}: the job sets it per object")
    keys = _job_keys(body["inputs"])
    bucket = body["inputs"]["bucket"]
    chunks, parts = _plan_chunks(route, body, keys)
    _check_options(route, _item_body(options, bucket, chunks[0][0], parts))
    job_id = uuid.uuid4().hex
    job = {"id": job_id, "folder": folder, "route": route.name, "bucket": bucket, "options": options,
           "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "items": len(keys), "parts": parts,
           "lanes": min(int(body.get("max_concurrency", max_concurrency_limit())), max_concurrency_limit(), len(chunks)),
           "chunks": chunks}
    put_json(_key(folder, job_id, "job.json"), job)
    # One invocation starts the lanes: the request stays short whatever the lanes, and a failure here
    # leaves nothing running (the unused plan expires with the bucket's lifecycle rule).
    invoke_async(_event(job, "start"))
    logger.info("job submitted", extra={"job_id": job_id, "route": route.name, "items": len(keys), "chunks": len(chunks)})
    return {"job": _status(job, done=0, summary=None)}


def is_job_event(event: Any) -> bool:
    return isinstance(event, dict) and isinstance(event.get(JOB_EVENT), dict)


def _without_pictures(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {name: _without_pictures(value) for name, value in answer.items() if name != _BULKY}
    return answer


def _run_unit(route: Route, body: dict[str, Any], model: ModelBundle, job_id: str) -> dict[str, Any]:
    """One object's answer (without its pictures), or its error, as the route would have answered a request."""
    try:
        validate_body(body, route.schema or {})
        return {"status": 200, "answer": _without_pictures(route.predict(body, model))}
    except ApiError as err:
        return {"status": err.status, "error": {"code": err.code, "message": err.message}}
    except Exception:  # noqa: BLE001 - one bad object must not stop the job; logged as the handler does
        logger.exception("unexpected error in a job item", extra={"job_id": job_id})
        return {"status": 500, "error": {"code": "internal_error", "message": "Unexpected server error; it has been logged."}}


def run_job_step(event: dict[str, Any], folder: str, routes: Mapping[str, Route], model: ModelBundle,
                 invocation: str) -> dict[str, Any]:
    """A worker invocation: ``start`` queues the lanes' first chunks; ``chunk`` runs one chunk (once:
    a second delivery finds its results), stores them and queues the lane's next chunk, or, as a
    lane's last, the ``finish`` once every chunk is in; ``finish`` writes the result. S3 and Lambda
    failures raise, so Lambda retries the invocation (twice, under the same ``invocation`` id)."""
    payload = event[JOB_EVENT]
    job_id, step, index = str(payload.get("id", "")), payload.get("step"), payload.get("chunk")
    if payload.get("folder") != folder or not re.fullmatch(JOB_ID_PATTERN, job_id):
        logger.warning("job event not for this function", extra={"job_id": job_id})
        return {"job": job_id, "step": step, "ran": False}
    job = get_json(_key(folder, job_id, "job.json"))
    total = len(job["chunks"]) if job else 0
    if job is None or step not in ("start", "chunk", "finish") or (step == "chunk" and not (
            isinstance(index, int) and 0 <= index < total)):
        logger.warning("job step without a plan", extra={"job_id": job_id, "step": step})  # expired, or not ours
        return {"job": job_id, "step": step, "ran": False}
    route = routes[job["route"]]
    if step == "start":
        for lane in range(job["lanes"]):
            _queue_once(job, "chunk", lane, invocation)
    elif step == "finish":
        _write_result(job, route, model)
    else:
        chunk_key = _chunk_key(folder, job_id, index)
        if get_json(chunk_key) is None:
            results = [{**unit, **_run_unit(route, _item_body(job["options"], job["bucket"], unit, job["parts"]), model, job_id)}
                       for unit in job["chunks"][index]]
            put_json(chunk_key, {"chunk": index, "results": results})
        following = index + job["lanes"]
        if following < total:
            _queue_once(job, "chunk", following, invocation)
        elif count_keys(_key(folder, job_id, "chunks/")) >= total:  # a lane's last chunk; the other lanes' are in
            _queue_once(job, "finish", None, invocation)
    logger.info("job step done", extra={"job_id": job_id, "step": step, "chunk": index})
    return {"job": job_id, "step": step, "ran": True}


def _merged(route: Route, key: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    failed = next((part for part in parts if part["status"] != 200), None)
    if failed:
        return {"key": key, "status": failed["status"], "error": failed["error"]}
    try:
        return {"key": key, "status": 200, "answer": route.merge_chunks([part["answer"] for part in parts])}
    except ValueError:  # parts that do not fit together: the object changed while the job ran
        logger.warning("job parts do not merge", extra={"route": route.name})
        return {"key": key, "status": 500, "error": {"code": "internal_error",
                                                     "message": "The object's parts did not fit together; was it replaced during the job?"}}


def _items(route: Route, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per object, in the job's order; an object scored in parts gets its merged answer,
    or the first part's error."""
    if not route.merge_chunks:
        return results
    by_key: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_key.setdefault(result["key"], []).append(result)
    return [_merged(route, key, parts) for key, parts in by_key.items()]


def summarise(items: list[dict[str, Any]]) -> dict[str, Any]:
    succeeded = [item for item in items if item["status"] == 200]
    return {"items": len(items), "succeeded": len(succeeded), "failed": len(items) - len(succeeded),
            "labels": dict(Counter(item["answer"].get("label") for item in succeeded if "label" in item["answer"])),
            "errors": dict(Counter(item["error"]["code"] for item in items if item["status"] != 200))}


def _write_result(job: dict[str, Any], route: Route, model: ModelBundle) -> None:
    folder, job_id = job["folder"], job["id"]
    with ThreadPoolExecutor(max_workers=_READERS) as pool:
        chunks = list(pool.map(lambda n: get_json(_chunk_key(folder, job_id, n)), range(len(job["chunks"]))))
    items = _items(route, [result for chunk in chunks for result in chunk["results"]])
    summary = summarise(items)
    put_json(_key(folder, job_id, "result.json"), {
        "job": job_id, "route": route.path, "model": model.info, "options": job["options"], "summary": summary, "items": items})
    put_json(_key(folder, job_id, "summary.json"), summary)  # last: its presence means "completed"


def _status(job: dict[str, Any], *, done: int, summary: dict[str, Any] | None) -> dict[str, Any]:
    status = {"id": job["id"], "route": job["route"], "status": "completed" if summary is not None else "running",
              "created_at": job["created_at"], "items": job["items"],
              "chunks": {"total": len(job["chunks"]), "done": done}, "max_concurrency": job["lanes"]}
    if summary is not None:
        status["summary"] = summary
        status["result"] = presigned_download(_key(job["folder"], job["id"], "result.json"))
    return status


def job_status(folder: str, job_id: str) -> dict[str, Any]:
    """``GET <prefix>/jobs/{id}``: progress, and the results' place once the job is done."""
    job = None
    if re.fullmatch(JOB_ID_PATTERN, job_id):  # no S3 call for an id that cannot be one
        input_bucket()  # a deployment without a bucket says so (503), not "no such job"
        job = get_json(_key(folder, job_id, "job.json"))
    if job is None:
        raise NotFoundError("job_not_found", f"No job {job_id!r} on this function (jobs expire with the bucket's lifecycle rule).")
    summary = get_json(_key(folder, job_id, "summary.json"))
    done = len(job["chunks"]) if summary is not None else count_keys(_key(folder, job_id, "chunks/"))
    return {"job": _status(job, done=done, summary=summary)}
