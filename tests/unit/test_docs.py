"""The documentation keeps up with the code: every `ONCOSERVE_*` variable is in docs/configuration.md,
the README stays a front door, and what it links to exists."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

CODE_FOLDERS = ("functions", "local", "train", "bench", "contract", "client", "convert", "tests", ".ci")


def names_read_by_the_code() -> set[str]:
    found = set()
    for folder in CODE_FOLDERS:
        for path in (REPO_ROOT / folder).rglob("*"):
            if path.suffix in (".py", "") and path.is_file() and "egg-info" not in str(path):
                found |= set(re.findall(r"ONCOSERVE_[A-Z0-9_]+", path.read_text(errors="ignore")))
    found |= set(re.findall(r"ONCOSERVE_[A-Z0-9_]+", (REPO_ROOT / "template.yaml").read_text()))
    return found


def test_every_environment_variable_is_documented_once():
    documented = re.findall(r"^\| `(ONCOSERVE_[A-Z0-9_]+)` \|", (REPO_ROOT / "docs" / "configuration.md").read_text(), re.M)
    assert len(documented) == len(set(documented))
    assert names_read_by_the_code() == set(documented)


def test_the_readme_is_a_front_door():
    text = (REPO_ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    assert "not a medical device" in text


def test_relative_links_in_the_readme_and_docs_resolve():
    for page in [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\((?!https?:|#)([^)#\s]+)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"
