"""Score every image of a folder into a CSV: concurrent, resumable, failures recorded not fatal."""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .client import Client
from .errors import ApiError
from .inputs import IMAGE_SUFFIXES

COLUMNS = ["file", "task", "status", "label", "label_probability", "threshold", "error_status", "error_code", "error_message",
           "model_version", "ood_status", "ood_score"]


@dataclass
class BatchSummary:
    total: int
    skipped: int  # already scored in the output
    scored: int
    failed: int


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _row(name: str, task: str, answer: dict[str, Any] | None = None, error: ApiError | None = None) -> dict[str, Any]:
    if error is not None:
        ood = (error.details or {}).get("ood") or {}
        return {"file": name, "task": task, "status": "error", "error_status": error.status, "error_code": error.code,
                "error_message": error.message, "ood_status": ood.get("status"), "ood_score": ood.get("score")}
    assert answer is not None
    label, ood = answer.get("label"), answer.get("ood") or {}
    return {"file": name, "task": task, "status": "ok", "label": label,
            "label_probability": answer.get("probabilities", {}).get(label), "threshold": answer.get("threshold"),
            "model_version": answer.get("model", {}).get("version"), "ood_status": ood.get("status"),
            "ood_score": ood.get("score")}


def _kept_rows(out: Path, task: str) -> list[dict[str, str]]:
    """Rows already scored; failed rows are dropped so that a rerun tries them again."""
    if not out.is_file():
        return []
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames and list(reader.fieldnames) != COLUMNS:
            # Never rewrite a file this command did not write.
            raise ValueError(f"{out} exists and is not an oncoserve batch file (columns {reader.fieldnames})")
        rows = list(reader)
    other = sorted({row["task"] for row in rows} - {task})
    if other:
        raise ValueError(f"{out} holds {', '.join(other)} results; write {task} results to another file")
    return [row for row in rows if row["status"] == "ok"]


def run_batch(client: Client, task: str, folder: Path, out: Path, *, concurrency: int = 4,
              progress: bool = True, **options: Any) -> BatchSummary:
    files = images_in(folder)
    task = f"{task}-region" if options.get("region") else task  # a region is another answer than a patch
    kept = _kept_rows(out, task)
    done = {row["file"] for row in kept}
    todo = [p for p in files if p.relative_to(folder).as_posix() not in done]
    # Rewrite the output with the kept rows first (atomically), then append as answers come.
    partial = out.with_suffix(out.suffix + ".partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(partial, out)
    failed = 0
    route_task = task.removesuffix("-region")

    def score(path: Path) -> dict[str, Any]:
        name = path.relative_to(folder).as_posix()
        try:
            return _row(name, task, answer=client.predict(route_task, path, **options))
        except ApiError as exc:
            return _row(name, task, error=exc)
        except Exception as exc:  # noqa: BLE001 - one unreadable file or odd answer must not end the batch
            return _row(name, task, error=ApiError(0, "client_error", f"{type(exc).__name__}: {exc}"))

    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        with out.open("a", newline="") as handle, tqdm(total=len(files), initial=len(files) - len(todo), unit="image",
                                                        disable=not progress, desc=f"{task} {folder.name}") as bar:
            writer = csv.DictWriter(handle, COLUMNS)
            # Rows are written here, in one thread, as answers come.
            for future in as_completed([pool.submit(score, path) for path in todo]):
                row = future.result()
                writer.writerow(row)
                handle.flush()  # a run cut off keeps every answer it got
                failed += row["status"] != "ok"
                bar.update(1)
    finally:
        pool.shutdown(cancel_futures=True)  # Ctrl-C: send nothing more
    return BatchSummary(total=len(files), skipped=len(files) - len(todo), scored=len(todo) - failed, failed=failed)
