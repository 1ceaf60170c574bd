"""Schemathesis, driven by openapi.yaml, against the running local API: no answer >= 500, every
status and body as documented, and the key enforced. Bounded: examples per operation, a seed,
a time limit. Generated URLs are pointed at loopback (see schemathesis_hooks.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from local.template import REPO_ROOT

from tests.conftest import CONTRACT_KEY

EXAMPLES_PER_OPERATION = 20
SEED = 2026
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth"


def test_schemathesis_finds_no_server_error_and_no_contract_violation(contract_api, tmp_path):
    report = REPO_ROOT / "build" / "schemathesis.xml"
    report.parent.mkdir(exist_ok=True)
    command = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{contract_api.url}/openapi.json",
               "-H", f"x-api-key: {CONTRACT_KEY}", "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED),
               "--checks", CHECKS, "--request-timeout", "30", "--no-color",
               "--report", "junit", "--report-junit-path", str(report)]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout.split("SUMMARY")[-1]
