"""The built container images, tested as Lambda runs them: ``python -m local.container_images``.

Each image built by ``sam build`` is started with the Runtime Interface Emulator on loopback
(``../shared/tools/lambda-base/run-function.sh``: host network, 127.0.0.1 only), every event in
``events/`` is replayed against it with the same checks as ``local.replay``, and its size, what it
adds over the base image and its cold start (container start → first answer) are recorded in
``build/images.json`` and ``build/images.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from .emulator import INVOKE_PATH, invoke_url
from .replay import replay_function
from .template import REPO_ROOT, FunctionSpec, function_specs

LAMBDA_BASE_TOOLS = Path(os.environ.get("ONCOSERVE_LAMBDA_BASE_TOOLS", REPO_ROOT.parent / "shared" / "tools" / "lambda-base"))
BASE_IMAGE = "public.ecr.aws/lambda/python:3.12"
FIRST_PORT = 9500


def image_size(image: str) -> int:
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", image], check=True, capture_output=True, text=True)
    return int(out.stdout.strip())


def run_image(spec: FunctionSpec, port: int) -> tuple[str, float, float]:
    """Start the image; return (container id, seconds from `docker run` to the first answer, seconds of
    that first answer alone: runtime init + imports + model load + one request, i.e. Lambda's cold start)."""
    started = time.perf_counter()
    env = {**os.environ, "DOCKER_RUN_ARGS": "-e POWERTOOLS_TRACE_DISABLED=true -e POWERTOOLS_METRICS_NAMESPACE=OncoServe "
                                          f"-e AWS_LAMBDA_FUNCTION_MEMORY_SIZE={spec.memory_mb}",
           "RUN_FUNCTION_TIMEOUT": "120"}
    container = subprocess.run([str(LAMBDA_BASE_TOOLS / "run-function.sh"), spec.image, str(port)], check=True,
                               capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1]
    # First answer: a cheap request every function refuses the same way (init + one invoke).
    listening = time.perf_counter()
    first = invoke_url(f"http://127.0.0.1:{port}{INVOKE_PATH}",
                       {"httpMethod": "POST", "path": "/", "resource": "/", "body": None}, 120)
    if "statusCode" not in first:
        raise RuntimeError(f"{spec.image}: first invoke failed: {first}")
    done = time.perf_counter()
    return container, done - started, done - listening


def test_images(tasks: list[str] | None = None) -> dict[str, Any]:
    base = image_size(BASE_IMAGE)
    report: dict[str, Any] = {"base_image": BASE_IMAGE, "base_bytes": base, "functions": {}}
    failures = 0
    for i, spec in enumerate(s for s in function_specs() if not tasks or s.task in tasks):
        port = FIRST_PORT + 2 * i
        container, cold_start, first_answer = run_image(spec, port)
        try:
            url = f"http://127.0.0.1:{port}{INVOKE_PATH}"
            outcomes = replay_function(spec, lambda event: invoke_url(url, event, spec.timeout_s + 30))
        finally:
            subprocess.run(["docker", "stop", container], capture_output=True)
        for outcome in outcomes:
            print(f"{'ok  ' if outcome.ok else 'FAIL'} {spec.image:38s} {outcome.event:50s} {outcome.status!s:>4} "
                  f"{outcome.seconds * 1000:7.0f} ms  {outcome.detail}", flush=True)
        failed = sum(not o.ok for o in outcomes)
        failures += failed
        size = image_size(spec.image)
        report["functions"][spec.logical_id] = {
            "image": spec.image, "bytes": size, "added_bytes": size - base, "cold_start_s": round(cold_start, 2),
            "init_and_first_answer_s": round(first_answer, 2),
            "events": len(outcomes), "failed": failed,
        }
    report["failed"] = failures
    return report


def markdown(report: dict[str, Any]) -> str:
    lines = [f"Base image `{report['base_image']}` (local stand-in): {report['base_bytes'] / 1e6:.0f} MB.", "",
             "| function | image | size (MB) | added over base (MB) | container start → first answer (s) "
             "| of which init + first answer (s) | events replayed |",
             "|---|---|---|---|---|---|---|"]
    for logical_id, f in report["functions"].items():
        lines.append(f"| {logical_id} | `{f['image']}` | {f['bytes'] / 1e6:.0f} | {f['added_bytes'] / 1e6:.0f} | "
                     f"{f['cold_start_s']:.1f} | {f['init_and_first_answer_s']:.2f} | {f['events'] - f['failed']}/{f['events']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    report = test_images()
    out = REPO_ROOT / "build"
    out.mkdir(exist_ok=True)
    (out / "images.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "images.md").write_text(markdown(report))
    print(markdown(report))
    total = sum(f["events"] for f in report["functions"].values())
    print(f"images: {total - report['failed']} passed, {report['failed']} failed")
    return 1 if report["failed"] or not total else 0


if __name__ == "__main__":
    raise SystemExit(main())
