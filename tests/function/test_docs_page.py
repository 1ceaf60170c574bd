"""/docs renders in a real browser (headless Chromium) with every route of the contract."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request

import pytest
import yaml

from contract.__main__ import OPENAPI_FILE
from local.template import REPO_ROOT

# As the machine's notes advise: without the background-networking flags Chromium tries to reach
# Google's hosts at start; a fresh profile each run.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=20000", "--window-size=1280,2200"]


@pytest.fixture(scope="module")
def chromium():
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("ONCOSERVE_REQUIRE_DATA") == "1":
            pytest.fail("chromium is missing: `make test` installs it (Debian package chromium)")
        pytest.skip("chromium is not installed (make browser)")
    return path


def _render(chromium, url, tmp_path, *extra):
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, url],
                          capture_output=True, text=True, timeout=120)


def test_docs_page_lists_every_route_and_is_screenshotted(contract_api, chromium, tmp_path):
    url = f"{contract_api.url}/docs"
    dom = _render(chromium, url, tmp_path, "--dump-dom").stdout
    rendered = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    documented = set(yaml.safe_load(OPENAPI_FILE.read_text())["paths"])
    assert documented and rendered == documented
    assert "Research software, not a medical device" in dom
    screenshot = REPO_ROOT / "build" / "docs.png"
    screenshot.parent.mkdir(exist_ok=True)
    screenshot.unlink(missing_ok=True)
    _render(chromium, url, tmp_path, f"--screenshot={screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_document_is_served_with_this_api_as_its_first_server(contract_api):
    with urllib.request.urlopen(f"{contract_api.url}/openapi.json", timeout=10) as answer:
        document = yaml.safe_load(answer.read())
    assert document["servers"][0]["url"] == contract_api.url
    assert set(document["paths"]) == set(yaml.safe_load(OPENAPI_FILE.read_text())["paths"])
