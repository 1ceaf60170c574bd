"""Shared fixtures: a Lambda context, events, data and model locations.

``oncoserve_runtime`` is installed (editable) by `make setup`; pytest.ini puts the repository root
on the path for ``contract``, ``local``, ``train`` and ``bench``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"

from contract.apps import FakeLambdaContext, load_function_app, quiet_powertools  # noqa: E402,F401 - re-exported for the tests

quiet_powertools()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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


CONTRACT_KEY = "contract-test-key"


@pytest.fixture(scope="session")
def contract_api(tmp_path_factory):
    """One local API for the contract tests (docs page, client, fuzzing): every function, the usage
    plan lifted so that only what a test sends is measured, and a known key."""
    from local.running import LocalApi

    running = LocalApi(env={"API_KEY": CONTRACT_KEY, "ONCOSERVE_THROTTLE_RATE_LIMIT": "100000",
                            "ONCOSERVE_THROTTLE_BURST_LIMIT": "100000", "ONCOSERVE_QUOTA_PER_DAY": "10000000"},
                       log_path=tmp_path_factory.mktemp("contract") / "api.log").start()
    yield running
    running.stop()
