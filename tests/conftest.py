"""Shared fixtures: import paths, a Lambda context, events, data and model locations."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"
for path in (REPO_ROOT, FUNCTIONS_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# Outside Lambda: no X-Ray daemon, no CloudWatch; Powertools prints EMF to stdout otherwise.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "OncoServe")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@dataclass
class FakeLambdaContext:
    function_name: str = "oncoserve-test"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:oncoserve-test"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


def data_root() -> Path:
    return Path(os.environ.get("ONCOSERVE_DATA_ROOT") or REPO_ROOT.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The dataset root; skips (or fails in CI, ONCOSERVE_REQUIRE_DATA=1) when it is absent."""
    root = data_root()
    if not root.is_dir():
        message = f"dataset not found at {root} (set ONCOSERVE_DATA_ROOT)"
        if os.environ.get("ONCOSERVE_REQUIRE_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return root


def load_function_app(task: str):
    """Import ``functions/<task>/app.py`` as its own module (every function has an ``app``)."""
    import importlib.util

    function_dir = str(FUNCTIONS_DIR / task)
    if function_dir not in sys.path:  # helper modules beside app.py (as in /var/task)
        sys.path.insert(0, function_dir)
    spec = importlib.util.spec_from_file_location(f"oncoserve_app_{task}", FUNCTIONS_DIR / task / "app.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module
