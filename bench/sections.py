"""BENCHMARKS.md is made of ``## title`` sections written by different commands (``make bench`` per
model, ``make loadtest`` for the local API): each command rewrites its own and keeps the others."""

from __future__ import annotations

import re


def split_sections(text: str) -> tuple[str, dict[str, str]]:
    """(the text before the first section, title → section text with its heading, in order)."""
    header, *parts = re.split(r"^## ", text, flags=re.MULTILINE)
    sections = {}
    for part in parts:
        title, _, body = part.partition("\n")
        sections[title.strip()] = f"## {title.strip()}\n\n{body.strip(chr(10))}"
    return header, sections


def replace_section(text: str, title: str, section: str) -> str:
    """``text`` with section ``title`` replaced by ``section`` (added at the end if it had none)."""
    header, sections = split_sections(text)
    sections[title] = section.strip("\n")
    return header.rstrip("\n") + "\n\n" + "\n\n".join(sections.values()) + "\n"


def publish(name: str, result: object, title: str, section: str) -> None:
    """Keep a benchmark's figures: ``build/bench/<name>.json``, its section of BENCHMARKS.md, stdout."""
    import json

    from local.template import REPO_ROOT

    out = REPO_ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    benchmarks = REPO_ROOT / "BENCHMARKS.md"
    benchmarks.write_text(replace_section(benchmarks.read_text(), title, section))
    print(json.dumps(result, indent=2))
