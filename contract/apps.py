"""Import a function's ``app.py`` outside Lambda, as its own module (what /var/task holds)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"


def quiet_powertools() -> None:
    """Outside Lambda: no X-Ray daemon, no CloudWatch; Powertools prints EMF to stdout otherwise."""
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "OncoServe")


def load_function_app(task: str) -> ModuleType:
    """``functions/<task>/app.py`` with the shared runtime and its helper modules importable."""
    for path in (str(FUNCTIONS_DIR), str(FUNCTIONS_DIR / task)):
        if path not in sys.path:
            sys.path.insert(0, path)
    spec = importlib.util.spec_from_file_location(f"oncoserve_app_{task}", FUNCTIONS_DIR / task / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
