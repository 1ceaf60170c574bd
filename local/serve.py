"""``make serve``: every function of ``template.yaml`` under the emulator, behind the key-checking,
throttling gateway on ``127.0.0.1:$PORT`` (default 3000; 0 picks a free port).

Each function gets a pool of execution environments (``ONCOSERVE_CONCURRENCY``: ``2``, or
``2,skin=4`` for per-task values). Environments listen on free ports unless
``ONCOSERVE_FUNCTION_PORT`` gives a first one. ``API_KEY`` sets the key; if unset one is generated
and printed. The usage plan is the template's (``ONCOSERVE_THROTTLE_RATE_LIMIT``,
``ONCOSERVE_THROTTLE_BURST_LIMIT``, ``ONCOSERVE_QUOTA_PER_DAY`` override it). S3 inputs and uploads use a local stand-in for S3 (see
:mod:`local.s3`; ``ONCOSERVE_S3_PORT`` picks its port); jobs invoke their function through a local
Lambda Invoke API on the same pools (:mod:`local.lambda_api`). Prints a line starting
``ready:`` once it answers; SIGINT, SIGTERM and SIGHUP stop it and every process it started."""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from .docs import DocsSite
from .gateway import Gateway
from .lambda_api import LocalLambdaApi
from .pool import EnvironmentPool, side_by_side
from .ports import PortAllocator
from .s3 import LocalS3
from .stop_request import StopRequest
from .template import REPO_ROOT, FunctionSpec, binary_media_types, function_specs, load_template
from .usage_plan import Limits, UsagePlan

DEFAULT_CONCURRENCY = 2


def parse_concurrency(text: str, tasks: list[str]) -> dict[str, int]:
    """``"2"`` → 2 for every task; ``"2,skin=4"`` → 4 for skin, 2 for the others."""
    default, per_task = DEFAULT_CONCURRENCY, {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.rpartition("=")
        if name and name not in tasks:
            raise ValueError(f"unknown task {name!r} in concurrency {text!r} (tasks: {', '.join(tasks)})")
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"concurrency must be a whole number ≥ 1, got {part!r}")
        if name:
            per_task[name] = int(value)
        else:
            default = int(value)
    return {task: per_task.get(task, default) for task in tasks}


def start_pools(specs: list[FunctionSpec], concurrency: dict[str, int], ports: PortAllocator,
                env: dict[str, str] | None = None) -> list[EnvironmentPool]:
    logs = REPO_ROOT / "build" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pools = [EnvironmentPool(spec, concurrency[spec.task], ports=ports, log_path=logs / f"{spec.task}.log", env=env)
             for spec in specs]
    with ThreadPoolExecutor(max_workers=len(pools) or 1) as executor:
        failures = [f.exception() for f in [executor.submit(pool.start) for pool in pools]]
    errors = [exc for exc in failures if exc is not None]
    if errors:
        stop_pools(pools)
        raise errors[0]
    return pools


def stop_pools(pools: list[EnvironmentPool]) -> None:
    side_by_side([pool.stop for pool in pools])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="*", help="serve only these tasks (default: every function)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--function-port", type=int, default=int(os.environ["ONCOSERVE_FUNCTION_PORT"])
                        if os.environ.get("ONCOSERVE_FUNCTION_PORT") else None)
    parser.add_argument("--concurrency", default=os.environ.get("ONCOSERVE_CONCURRENCY", str(DEFAULT_CONCURRENCY)))
    args = parser.parse_args(argv)

    specs = [spec for spec in function_specs() if not args.tasks or spec.task in args.tasks]
    try:
        concurrency = parse_concurrency(args.concurrency, [spec.task for spec in function_specs()])
        limits = Limits.from_template(load_template())
        gateway_server = Gateway(args.port, {}, [])
    except (ValueError, OSError) as exc:
        in_use = isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE
        reason = f"127.0.0.1:{args.port} is already in use (set PORT)" if in_use else exc
        print(f"error: the local API cannot start: {reason}", file=sys.stderr, flush=True)
        return 2

    stop = StopRequest().on_signals(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    s3 = LocalS3(int(os.environ.get("ONCOSERVE_S3_PORT", "0")))
    lambda_api = LocalLambdaApi()
    threading.Thread(target=lambda_api.serve_forever, name="lambda-api", daemon=True).start()
    try:
        s3.start()
        env = {**s3.function_env, "AWS_ENDPOINT_URL_LAMBDA": lambda_api.endpoint}
        pools = start_pools(specs, concurrency, PortAllocator(args.function_port), env=env)
    except Exception as exc:  # emulator missing, a port taken, a runtime that would not start
        lambda_api.stop()
        s3.stop()
        gateway_server.server_close()
        print(f"error: the local API cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    api_key = os.environ.get("API_KEY") or secrets.token_urlsafe(24)
    gateway_server.routes = {route: pool.invoke for pool in pools for route in pool.spec.routes}
    lambda_api.invokers = {pool.spec.logical_id: pool.invoke for pool in pools}
    gateway_server.api_keys = [api_key.encode()]
    gateway_server.usage_plan = UsagePlan(limits)
    gateway_server.binary_media_types = binary_media_types()
    port = gateway_server.server_address[1]
    gateway_server.docs = DocsSite(f"http://127.0.0.1:{port}")

    failure: list[BaseException] = []

    def serve() -> None:
        try:
            gateway_server.serve_forever()
        except BaseException as exc:  # a crashed gateway takes the functions with it
            failure.append(exc)
        finally:
            stop.request()

    threading.Thread(target=serve, name="gateway", daemon=True).start()
    try:
        print(f"OncoServe local API on http://127.0.0.1:{port} (function logs in build/logs/)")
        for pool in pools:
            model_json = pool.spec.directory / "model" / "model.json"
            state = "model committed" if model_json.is_file() else "no model yet: answers 503"
            for method, path in pool.spec.routes:
                print(f"  {method} {path:28s} → {pool.spec.logical_id} (up to {pool.concurrency} environments; {state})")
        print(f"usage plan per key: {limits.rate:g} requests/s, burst {limits.burst}, {limits.quota_per_day} per day")
        print("API key: from $API_KEY" if os.environ.get("API_KEY") else
              f"API key (generated; set API_KEY to choose one): {api_key}")
        print(f"try: curl -s -X POST http://127.0.0.1:{port}/leukemia/predict -H 'x-api-key: <key>' "
              "-H 'Content-Type: application/json' -d @events/generated/leukemia/ok_aml.body.json")
        print(f"docs: http://127.0.0.1:{port}/docs (Swagger UI; the contract at /openapi.json)")
        print(f"S3 inputs and uploads: bucket {s3.bucket} on {s3.endpoint} (moto: a local stand-in for S3, "
              "not S3 itself)")
        print(f"ready: http://127.0.0.1:{port}", flush=True)
        stop.wait()
    finally:
        if not failure:
            gateway_server.shutdown()
        gateway_server.server_close()
        lambda_api.stop()
        stop_pools(pools)
        s3.stop()
    if failure:
        print(f"error: the gateway failed: {failure[0]!r}; every function was stopped", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
