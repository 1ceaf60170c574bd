"""``oncoserve``: predict one input, score a folder, list the models."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

from . import DEFAULT_URL, TASKS
from .batch import run_batch
from .client import Client
from .errors import ApiError


def _heatmap(answer: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The part of an answer holding its heatmap PNG (explanation, or a region's)."""
    for holder in (answer.get("explanation"), answer):
        if isinstance(holder, dict) and isinstance(holder.get("heatmap_png"), str):
            return holder, "heatmap_png"
    return None


def _predict(client: Client, args: argparse.Namespace) -> int:
    clinical = json.loads(Path(args.clinical).read_text()) if args.clinical else None
    answer = client.predict(args.task, args.input, explain=args.explain, modality=args.modality, frame=args.frame,
                            region=args.region, clinical=clinical, ood=args.ood)
    found = _heatmap(answer)
    if found and args.heatmap:
        holder, key = found
        Path(args.heatmap).write_bytes(base64.b64decode(holder[key]))
        holder[key] = f"<written to {args.heatmap}>"
    elif found:
        holder, key = found
        holder[key] = f"<{len(holder[key])} base64 characters; --heatmap FILE writes the PNG>"
    json.dump(answer, sys.stdout, indent=2)
    print()
    return 0


def _batch(client: Client, args: argparse.Namespace) -> int:
    summary = run_batch(client, args.task, Path(args.folder), Path(args.out), concurrency=args.concurrency,
                        progress=not args.no_progress, explain=False, region=args.region, ood=args.ood)
    print(f"{summary.total} images: {summary.skipped} already in {args.out}, {summary.scored} scored, "
          f"{summary.failed} failed (their error codes are in the file)", file=sys.stderr)
    return 1 if summary.failed else 0


def _models(client: Client, _args: argparse.Namespace) -> int:
    for task, meta in client.models().items():
        model = meta["model"]
        print(f"{task:16s} {model['name']:40s} {model['version']:8s} sha256 {model['sha256'][:12]}  "
              f"labels {', '.join(meta['labels'])}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="oncoserve", description="OncoServe API client (research use, not a medical device).")
    top.add_argument("--url", default=os.environ.get("ONCOSERVE_URL", DEFAULT_URL), help="API base URL ($ONCOSERVE_URL)")
    top.add_argument("--api-key", default=os.environ.get("ONCOSERVE_API_KEY"), help="x-api-key ($ONCOSERVE_API_KEY)")
    top.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    top.add_argument("--retries", type=int, default=4, help="retries on 429/502/503 and lost connections")
    commands = top.add_subparsers(dest="command", required=True)
    tasks = [*TASKS, "breast-survival"]

    predict = commands.add_parser("predict", help="one image, URL or expression profile (CSV gene,value or JSON)")
    predict.add_argument("task", choices=tasks)
    predict.add_argument("input", help="a file path or an http(s) URL (images)")
    predict.add_argument("--explain", action="store_true", help="brain, skin: a class-activation heatmap")
    predict.add_argument("--heatmap", metavar="PNG", help="write the heatmap (explanation or region) to this file")
    predict.add_argument("--modality", choices=["ct", "mri"], help="brain: the slice's modality")
    predict.add_argument("--frame", type=int, help="a multi-frame DICOM file's frame")
    predict.add_argument("--region", action="store_true", help="histopathology: score a larger region")
    predict.add_argument("--clinical", metavar="JSON", help="breast-survival: a JSON file of clinical variables")
    predict.add_argument("--ood", choices=["refuse", "report"],
                         help="an input far outside the training data: refused (default, 422) or answered, flagged")
    predict.set_defaults(run=_predict)

    batch = commands.add_parser("batch", help="every image of a folder → CSV (resumable)")
    batch.add_argument("task", choices=["histopathology", "brain", "skin"])
    batch.add_argument("folder")
    batch.add_argument("--out", required=True, help="CSV; rows already scored there are skipped")
    batch.add_argument("--concurrency", type=int, default=4)
    batch.add_argument("--region", action="store_true", help="histopathology: score regions")
    batch.add_argument("--ood", choices=["refuse", "report"],
                       help="images far outside the training data: refused (default; a row with the code) or scored, flagged")
    batch.add_argument("--no-progress", action="store_true")
    batch.set_defaults(run=_batch)

    models = commands.add_parser("models", help="every model's name, version, sha256 and labels")
    models.set_defaults(run=_models)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        with Client(args.url, args.api_key, timeout_s=args.timeout, retries=args.retries) as client:
            return args.run(client, args)
    except ApiError as exc:
        print(json.dumps({"error": {"status": exc.status, "code": exc.code, "message": exc.message,
                                    **({"details": exc.details} if exc.details else {})}}), file=sys.stderr)
        return 2
    except (ValueError, OSError) as exc:
        print(f"oncoserve: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
