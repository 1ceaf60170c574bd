"""``Client``: one method per route, the key and URL from arguments or the environment, timeouts,
and retries with exponential backoff and full jitter on throttling and transient server errors."""

from __future__ import annotations

import os
import random
import time
from typing import Any, Callable

import httpx

from .errors import ApiError
from .inputs import MAX_INLINE_BYTES, ExpressionSource, ImageSource, expression_body, image_body, image_bytes, media_type

DEFAULT_URL = "http://127.0.0.1:3000"  # the local API (make serve)
_TASK_OPTIONS = {"brain": {"modality", "explain", "frame", "ood"}, "skin": {"explain", "frame", "ood"},
                 "histopathology": {"ood"}, "leukemia": {"ood"}, "breast_survival": {"clinical", "ood"}}
TASKS = {"histopathology": "/histopathology", "brain": "/brain", "skin": "/skin", "leukemia": "/leukemia",
         "breast_survival": "/breast-survival"}


class Client:
    """The OncoServe API. ``url`` defaults to ``$ONCOSERVE_URL`` or the local API, ``api_key`` to
    ``$ONCOSERVE_API_KEY``. Each call raises :class:`ApiError` unless the answer is 2xx."""

    def __init__(self, url: str | None = None, api_key: str | None = None, *, timeout_s: float = 60.0,
                 retries: int = 4, backoff_s: float = 0.5, max_backoff_s: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = (url or os.environ.get("ONCOSERVE_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or os.environ.get("ONCOSERVE_API_KEY")
        if not key:
            raise ValueError("no API key: pass api_key (--api-key) or set ONCOSERVE_API_KEY")
        if retries < 0:
            raise ValueError("retries must be 0 or more")
        self.retries, self.backoff_s, self.max_backoff_s, self._sleep = retries, backoff_s, max_backoff_s, sleep
        self.retried = 0  # how many requests were sent again (throttling, transient errors)
        self._http = httpx.Client(base_url=self.url, headers={"x-api-key": key, "user-agent": "oncoserve-client/1.0"},
                                  timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)))

    # -- routes -----------------------------------------------------------------------------------
    # ``ood="report"`` on any route: an input the model's guard would refuse (422 out_of_distribution)
    # is answered instead, with ``ood.status`` out_of_distribution (research use).
    def brain(self, image: ImageSource, *, modality: str | None = None, explain: bool = False,
              frame: int | None = None, ood: str | None = None) -> dict[str, Any]:
        """Tumour vs healthy on a CT/MRI slice (PNG, JPEG, DICOM path or bytes, or a URL)."""
        return self._post("/brain/predict", {**self._image("/brain", image), **_options(modality=modality, explain=explain,
                                                                            frame=frame, ood=ood)})

    def skin(self, image: ImageSource, *, explain: bool = False, frame: int | None = None,
             ood: str | None = None) -> dict[str, Any]:
        """Melanoma vs benign on a dermoscopy image."""
        return self._post("/skin/predict", {**self._image("/skin", image), **_options(explain=explain, frame=frame, ood=ood)})

    def histopathology(self, image: ImageSource, *, ood: str | None = None) -> dict[str, Any]:
        """IDC or not for one ~50x50 H&E patch."""
        return self._post("/histopathology/predict", {**self._image("/histopathology", image), **_options(ood=ood)})

    def histopathology_region(self, image: ImageSource, *, ood: str | None = None) -> dict[str, Any]:
        """A larger H&E region: the p(IDC) grid, IDC area fraction and a heatmap PNG."""
        return self._post("/histopathology/region", {**self._image("/histopathology", image), **_options(ood=ood)})

    def leukemia(self, expression: ExpressionSource, *, ood: str | None = None) -> dict[str, Any]:
        """ALL vs AML from a Golub profile: a mapping gene → value, or a CSV/JSON file."""
        return self._post("/leukemia/predict", {**expression_body(expression), **_options(ood=ood)})

    def breast_survival(self, expression: ExpressionSource, clinical: dict[str, Any] | None = None, *,
                        ood: str | None = None) -> dict[str, Any]:
        """Risk, predicted survival and group 0–3 from METABRIC z-scores (a mapping or a CSV/JSON file); with
        ``clinical`` (METABRIC column names, e.g. ``{"age_at_diagnosis": 61, "tumor_size": 22, ...}``) the
        clinical + expression model answers."""
        return self._post("/breast-survival/predict", {**expression_body(expression), **_options(clinical=clinical, ood=ood)})

    def predict(self, task: str, source: Any, **options: Any) -> dict[str, Any]:
        """The route of ``task`` (``region=True``: the histopathology region route)."""
        task = task.replace("-", "_")
        if task == "histopathology" and options.pop("region", False):
            return self.histopathology_region(source, **_options(ood=options.pop("ood", None)))
        options.pop("region", None)
        method = {"brain": self.brain, "skin": self.skin, "histopathology": self.histopathology,
                  "leukemia": self.leukemia, "breast_survival": self.breast_survival}.get(task)
        if method is None:
            raise ValueError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
        chosen = _options(**options)
        unsupported = sorted(set(chosen) - _TASK_OPTIONS.get(task, set()))
        if unsupported:
            raise ValueError(f"{task} takes no {', '.join(unsupported)} option")
        return method(source, **chosen)

    def slide(self, slide: ImageSource | dict[str, str], *, workers: int = 1, mpp: float | None = None,
              ood: str | None = None, timeout_s: float = 900.0) -> dict[str, Any]:
        """A whole-slide image (a pyramidal TIFF path or bytes, uploaded first; or the ``{"bucket",
        "key"}`` of one already uploaded): its IDC map. ``workers`` > 1 runs it as a job in that many
        parts, side by side, merged by the API into the one answer a single request gives."""
        reference = slide if isinstance(slide, dict) else self.upload("histopathology", slide)
        options = _options(mpp=mpp, ood=ood)
        if workers <= 1:
            return self._post("/histopathology/slide", {"s3": reference, **options})
        job = self.submit_job("histopathology", "slide", {"bucket": reference["bucket"], "keys": [reference["key"]]},
                              options=options, chunks=workers, max_concurrency=workers)
        item = self.job_result("histopathology", self.wait_for_job("histopathology", job["id"], timeout_s=timeout_s))["items"][0]
        if item["status"] != 200:
            raise ApiError.from_answer(item["status"], {"error": item["error"]})
        return item["answer"]

    # -- jobs: a route over many objects of the input bucket, on the API's own concurrency ---------
    def submit_job(self, task: str, route: str, inputs: dict[str, Any], *, options: dict[str, Any] | None = None,
                   **settings: Any) -> dict[str, Any]:
        """Start ``route`` (``predict``, ``region``, ``slide``) over ``inputs`` (``{"bucket", "prefix"}`` or
        ``{"bucket", "keys"}``); ``settings``: ``chunk_size``, ``chunks``, ``max_concurrency``. Returns the job."""
        body = {"route": route, "inputs": inputs, **({"options": options} if options else {}), **_options(**settings)}
        # Sent again only when it cannot have started (throttled, or Lambda refused its start): a lost
        # answer may hide a started job.
        return self._request("POST", f"{TASKS[task.replace('-', '_')]}/jobs", json=body,
                             retry_when=lambda error: error.code in ("throttled", "job_start_failed"))["job"]

    def job(self, task: str, job_id: str) -> dict[str, Any]:
        """A job's progress; once ``status`` is ``completed``, its summary and where its results are."""
        return self._request("GET", f"{TASKS[task.replace('-', '_')]}/jobs/{job_id}")["job"]

    def wait_for_job(self, task: str, job_id: str, *, timeout_s: float = 900.0, poll_s: float = 1.0,
                     max_poll_s: float = 15.0) -> dict[str, Any]:
        """Poll until the job is completed, the interval doubling from ``poll_s`` to ``max_poll_s`` (each
        poll counts against the key's quota); raises ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(task, job_id)
            if job["status"] == "completed":
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} not completed after {timeout_s} s ({job['chunks']})")
            self._sleep(poll_s)
            poll_s = min(max_poll_s, poll_s * 2)

    def job_result(self, task: str, job: dict[str, Any]) -> dict[str, Any]:
        """A completed job's results (``items``: each object's answer or error, in the job's order)."""
        if job.get("status") != "completed":
            job = self.job(task, job["id"])
        if job["status"] != "completed":
            raise ValueError(f"job {job['id']} is still running")
        # Straight from S3, without the API key: the signed URL is the permission (a fresh one if it expired).
        response = httpx.get(job["result"]["url"], timeout=self._http.timeout)
        if response.status_code == 403:
            response = httpx.get(self.job(task, job["id"])["result"]["url"], timeout=self._http.timeout)
        if response.status_code != 200:
            raise ApiError(response.status_code, "result_unavailable", f"S3 refused the result: {response.text[:200]}")
        return response.json()

    def upload(self, task: str, source: ImageSource) -> dict[str, str]:
        """Put a file into the API's input bucket through a presigned URL; return the ``{"bucket",
        "key"}`` to send as ``s3``. The image methods do this by themselves for files over 4 MiB."""
        data = image_bytes(source)
        if data is None:
            raise ValueError("a URL is fetched by the API, not uploaded")
        answer = self._post(f"{TASKS[task.replace('-', '_')]}/uploads", {"content_type": media_type(data), "bytes": len(data)})
        upload = answer["upload"]
        # Straight to S3, without the API key: the signed URL is the permission.
        response = httpx.request(upload["method"], upload["url"], content=data, headers=upload["headers"],
                                 timeout=self._http.timeout)
        if response.status_code != 200:
            raise ApiError(response.status_code, "upload_failed", f"S3 refused the upload: {response.text[:200]}")
        return answer["s3"]

    def _image(self, prefix: str, source: ImageSource) -> dict[str, Any]:
        data = image_bytes(source)  # read once, whether it goes inline or by upload
        if data is not None and len(data) > MAX_INLINE_BYTES:
            return {"s3": self.upload(prefix.strip("/"), data)}
        return image_body(source if data is None else data)

    def model(self, task: str) -> dict[str, Any]:
        """The model's metadata: labels, thresholds, input contract, test metrics, licence, card."""
        return self._request("GET", f"{TASKS[task.replace('-', '_')]}/model")

    def health(self, task: str) -> dict[str, Any]:
        """Readiness: the function's model is loaded and verified."""
        return self._request("GET", f"{TASKS[task.replace('-', '_')]}/health")

    def models(self) -> dict[str, dict[str, Any]]:
        return {task: self.model(task) for task in TASKS}

    # -- transport --------------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, json=body)

    def _request(self, method: str, path: str, *, retry_when: Callable[[ApiError], bool] | None = None,
                 **kwargs: Any) -> dict[str, Any]:
        retry_when = retry_when or (lambda error: error.retryable)
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
                if 200 <= response.status_code < 300:  # 202: a job accepted
                    return response.json()
                error = ApiError.from_answer(response.status_code, _json_or_text(response))
                retry_after = _retry_after(response)
            except httpx.TransportError as exc:  # no answer: refused, reset, timed out
                error, retry_after = ApiError(0, "transport_error", f"{type(exc).__name__}: {exc}"), None
            if not retry_when(error) or attempt == self.retries:
                raise error
            self.retried += 1
            # Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): concurrent
            # clients throttled together must not come back together.
            delay = random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** attempt))
            self._sleep(max(delay, retry_after or 0.0))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def _options(**options: Any) -> dict[str, Any]:
    """The options a caller set: ``None`` and ``False`` are left out, ``0`` is kept (frame 0)."""
    return {name: value for name, value in options.items() if value is not None and value is not False}


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None
