"""Import a function's ``app.py`` outside Lambda, as its own module (what /var/task holds)."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"


def quiet_powertools() -> None:
    """Outside Lambda: no X-Ray daemon, no CloudWatch; Powertools prints EMF to stdout otherwise."""
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "OncoServe")


@dataclass
class FakeLambdaContext:
    """What a handler reads of Lambda's context object, for calling it in process."""

    function_name: str = "oncoserve-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:oncoserve-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_function_app(task: str) -> ModuleType:
    """``functions/<task>/app.py`` with the shared runtime and its helper modules importable."""
    for path in (str(FUNCTIONS_DIR), str(FUNCTIONS_DIR / task)):
        if path not in sys.path:
            sys.path.insert(0, path)
    spec = importlib.util.spec_from_file_location(f"oncoserve_app_{task}", FUNCTIONS_DIR / task / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module
