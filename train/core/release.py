"""A model's shipped configuration and facts, declared in ``train/<task>/release.yaml``.

The file holds what ``python -m train.<task>`` builds when given no options (``options``), the
model's name, every released version with what it changed (``releases``, oldest first), and the
facts its model.json and card state: data source, citation and licence, intended use, what is out
of scope, limitations. Code computes figures; this file says what was decided.

A run's version is the newest release built with the run's options: the shipped ``options``, with
the release's own ``options`` over them (which may also name what the run shipped, e.g. skin's
number of backbones); a release listed without ``options`` is history only. A run that matches
none is an unreleased build: the next minor version, with a changelog line naming what differs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train.core.paths import REPO_ROOT

BACKBONE_BOUND = ("weights", "second_weights", "input_size", "ood_layer")  # meaningful only for the backbone they name


def release_file(task: str) -> Path:
    return REPO_ROOT / "train" / task / "release.yaml"


@dataclass(frozen=True)
class Release:
    task: str
    options: dict[str, Any]
    name: str  # may hold {fields} the training command fills in (e.g. the backbone)
    releases: tuple[dict[str, Any], ...]
    data: dict[str, Any]
    intended_use: str
    out_of_scope: str
    limitations: str

    @classmethod
    def load(cls, task: str) -> "Release":
        import yaml

        document = yaml.safe_load(release_file(task).read_text())
        return cls(task=task, options=document.get("options") or {}, name=document["name"],
                   releases=tuple(document["releases"]), data=document["data"],
                   intended_use=document["intended_use"], out_of_scope=document["out_of_scope"],
                   limitations=document["limitations"])

    def version(self, facts: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """(version, changelog up to it) for a run described by ``facts`` (its options, and what it shipped)."""
        for index in range(len(self.releases) - 1, -1, -1):
            if "options" in self.releases[index] and not self.differences(self.releases[index], facts):
                return self.releases[index]["version"], self.changelog(index + 1)
        newest = next(r for r in reversed(self.releases) if "options" in r)
        major, minor, _ = (int(part) for part in self.releases[-1]["version"].split("."))
        version = f"{major}.{minor + 1}.0"
        return version, {**self.changelog(len(self.releases)),
                         version: f"Unreleased build: {self.differences(newest, facts)} differs from every release "
                                  f"in train/{self.task}/release.yaml"}

    def differences(self, release: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
        """What ``facts`` has other than ``release`` was built with: its options over the shipped ones."""
        wanted = {**self.options, **release["options"]}
        return {k: facts.get(k) for k, v in wanted.items() if facts.get(k) != v}

    def changelog(self, count: int) -> dict[str, str]:
        return {r["version"]: r["changes"] for r in self.releases[:count]}

    def header(self, facts: dict[str, Any], **name_fields: str) -> dict[str, Any]:
        """model.json's first keys: name, task, version and changelog."""
        version, changelog = self.version(facts)
        return {"name": self.name.format(**name_fields), "task": self.task, "version": version, "changelog": changelog}

    def use(self) -> dict[str, str]:
        """model.json's last keys: what the model is for, what not, and its limits."""
        return {"intended_use": self.intended_use, "out_of_scope": self.out_of_scope, "limitations": self.limitations}


def model_metadata(release: Release, facts: dict[str, Any], *, name_fields: dict[str, str] | None = None,
                   artifact: dict[str, Any], input: dict[str, Any], preprocessing: dict[str, Any],
                   output: dict[str, Any], training: dict[str, Any], metrics: dict[str, Any],
                   data: dict[str, Any], plots: list[str], conversion: dict[str, Any] | None = None,
                   test_predictions: list[dict[str, Any]] | None = None,
                   ood: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything ``record.write_model_json`` writes, in the order every model.json keeps; ``data``
    adds the run's facts (splits) to the release file's (source, citation, licence, version)."""
    metadata = {**release.header(facts, **(name_fields or {})), "artifact": artifact, "input": input,
                "preprocessing": preprocessing, "output": output, **({"ood": ood} if ood else {}),
                "training": training}
    if conversion is not None:
        metadata["conversion"] = conversion
    metadata["metrics"] = metrics
    if test_predictions is not None:
        metadata["test_predictions"] = test_predictions
    return {**metadata, "data": {**release.data, **data}, "plots": plots, **release.use()}


def parse_shipped_args(parser: argparse.ArgumentParser, task: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a training command's options, defaulting to ``options`` in ``train/<task>/release.yaml``.

    So the bare command builds the shipped model; an option given overrides its entry, and another
    ``--backbone`` drops the entries tied to the shipped one (its tuned weights and input size)."""
    shipped = Release.load(task).options
    options = {action.dest for action in parser._actions}
    unknown = sorted(set(shipped) - options)
    if unknown:
        raise ValueError(f"{release_file(task).name}: {task} has no option(s) {unknown}")
    code_defaults = {key: parser.get_default(key) for key in shipped}
    parser.set_defaults(**shipped)
    args = parser.parse_args(argv)
    # Entries tied to the shipped backbone, or to its weights: another backbone drops all of them,
    # other weights drop the second backbone that was paired with the shipped ones.
    backbone_changed = "backbone" in shipped and args.backbone != shipped["backbone"]
    weights_changed = "weights" in shipped and args.weights != shipped["weights"]
    for key in BACKBONE_BOUND:
        tied = backbone_changed or (key == "second_weights" and weights_changed)
        if tied and key in shipped and getattr(args, key) == shipped[key]:
            setattr(args, key, code_defaults[key])
    return args
