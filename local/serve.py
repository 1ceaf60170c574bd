"""``make serve``: every function of ``template.yaml`` under the emulator behind the key-checking
gateway on ``127.0.0.1:$PORT`` (default 3000). ``API_KEY`` sets the key; if unset one is generated
and printed."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import threading

from .emulator import EmulatedFunction
from .gateway import Gateway
from .template import REPO_ROOT, function_specs

FIRST_FUNCTION_PORT = 9100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--function-port", type=int, default=int(os.environ.get("ONCOSERVE_FUNCTION_PORT", FIRST_FUNCTION_PORT)))
    args = parser.parse_args(argv)

    api_key = os.environ.get("API_KEY") or secrets.token_urlsafe(24)
    logs = REPO_ROOT / "build" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    functions = [EmulatedFunction(spec, args.function_port + i, log_path=logs / f"{spec.task}.log")
                 for i, spec in enumerate(function_specs())]
    routes = {}
    try:
        for function in functions:
            function.start()
            for route in function.spec.routes:
                routes[route] = function.invoke
        gateway = Gateway(args.port, routes, [api_key])
    except Exception:
        for function in functions:
            function.stop()
        raise

    print(f"OncoServe local API on http://127.0.0.1:{args.port} (function logs in {logs.relative_to(REPO_ROOT)}/)")
    for function in functions:
        model_json = function.spec.directory / "model" / "model.json"
        state = "model committed" if model_json.is_file() else "no model yet: answers 503"
        for method, path in function.spec.routes:
            print(f"  {method} {path:28s} → {function.spec.logical_id} (127.0.0.1:{function.port}; {state})")
    if os.environ.get("API_KEY"):
        print("API key: from $API_KEY")
    else:
        print(f"API key (generated; set API_KEY to choose one): {api_key}")
    print(f"try: curl -s -X POST http://127.0.0.1:{args.port}/leukemia/predict -H 'x-api-key: <key>' "
          "-H 'Content-Type: application/json' -d @events/generated/leukemia/ok_aml.body.json")
    sys.stdout.flush()

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = threading.Thread(target=gateway.serve_forever, daemon=True)
    server.start()
    try:
        stop.wait()
    finally:
        gateway.shutdown()
        for function in functions:
            function.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
