"""Score every image of a folder into a CSV: concurrent, resumable, failures recorded not fatal."""

from __future__ import annotations

import csv
import os
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .client import Client
from .errors import ApiError
from .inputs import IMAGE_SUFFIXES

COLUMNS = ["file", "status", "label", "probability", "threshold", "error_status", "error_code", "error_message",
           "model_version"]


@dataclass
class BatchSummary:
    total: int
    skipped: int  # already scored in the output
    scored: int
    failed: int


def images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _row(name: str, answer: dict[str, Any] | None = None, error: ApiError | None = None) -> dict[str, Any]:
    if error is not None:
        return {"file": name, "status": "error", "error_status": error.status, "error_code": error.code,
                "error_message": error.message}
    assert answer is not None
    label = answer.get("label")
    return {"file": name, "status": "ok", "label": label, "probability": answer.get("probabilities", {}).get(label),
            "threshold": answer.get("threshold"), "model_version": answer.get("model", {}).get("version")}


def _kept_rows(out: Path) -> list[dict[str, str]]:
    """Rows already scored; failed rows are dropped so that a rerun tries them again."""
    if not out.is_file():
        return []
    with out.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames and list(reader.fieldnames) != COLUMNS:
            # Never rewrite a file this command did not write.
            raise ValueError(f"{out} exists and is not an oncoserve batch file (columns {reader.fieldnames})")
        return [row for row in reader if row.get("status") == "ok"]


def run_batch(client: Client, task: str, folder: Path, out: Path, *, concurrency: int = 4,
              progress: bool = True, **options: Any) -> BatchSummary:
    files = images_in(folder)
    kept = _kept_rows(out)
    done = {row["file"] for row in kept}
    todo = [p for p in files if p.relative_to(folder).as_posix() not in done]
    # Rewrite the output with the kept rows first (atomically), then append as answers come.
    partial = out.with_suffix(out.suffix + ".partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(kept)
    os.replace(partial, out)
    lock, failed = threading.Lock(), 0

    def score(path: Path) -> dict[str, Any]:
        name = path.relative_to(folder).as_posix()
        try:
            return _row(name, answer=client.predict(task, path, **options))
        except ApiError as exc:
            return _row(name, error=exc)
        except OSError as exc:
            return _row(name, error=ApiError(0, "unreadable_file", str(exc)))

    with out.open("a", newline="") as handle, ThreadPoolExecutor(max_workers=concurrency) as pool, \
            tqdm(total=len(files), initial=len(files) - len(todo), unit="image", disable=not progress,
                 desc=f"{task} {folder.name}") as bar:
        writer = csv.DictWriter(handle, COLUMNS)
        for future in as_completed([pool.submit(score, path) for path in todo]):
            row = future.result()
            with lock:
                writer.writerow(row)
                handle.flush()  # a run cut off keeps every answer it got
                failed += row["status"] != "ok"
            bar.update(1)
    return BatchSummary(total=len(files), skipped=len(files) - len(todo), scored=len(todo) - failed, failed=failed)
