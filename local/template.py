"""Read ``template.yaml``: the single source of truth for functions, routes and settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "template.yaml"


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that keeps CloudFormation short tags (!Ref, !Sub, ...) as plain values."""


def _any_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {tag_suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {tag_suffix: loader.construct_sequence(node)}
    return {tag_suffix: loader.construct_mapping(node)}


_CloudFormationLoader.add_multi_constructor("!", _any_tag)


@dataclass(frozen=True)
class FunctionSpec:
    """One ``AWS::Serverless::Function`` of the template."""

    logical_id: str
    task: str  # folder under functions/ (DockerBuildArgs.TASK)
    routes: tuple[tuple[str, str], ...]  # (METHOD, /path)
    memory_mb: int
    timeout_s: int
    docker_tag: str
    functions_root: Path = REPO_ROOT / "functions"  # holds <task>/ and the shared oncoserve_runtime/

    @property
    def directory(self) -> Path:
        return self.functions_root / self.task

    @property
    def image(self) -> str:
        # `sam build` names an image function's image <lower-case logical id>:<DockerTag>.
        return f"{self.logical_id.lower()}:{self.docker_tag}"


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass


def function_specs(path: Path = TEMPLATE) -> list[FunctionSpec]:
    template = load_template(path)
    defaults = template.get("Globals", {}).get("Function", {})
    specs = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        routes = tuple(
            (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
            for event in properties.get("Events", {}).values()
            if event["Type"] == "Api"
        )
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                task=resource["Metadata"]["DockerBuildArgs"]["TASK"],
                routes=routes,
                memory_mb=int(properties.get("MemorySize", defaults.get("MemorySize", 128))),
                timeout_s=int(properties.get("Timeout", defaults.get("Timeout", 3))),
                docker_tag=resource["Metadata"]["DockerTag"],
            )
        )
    return specs


def binary_media_types(template: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The API's binary media types (``~1`` is how API Gateway writes ``/`` in them)."""
    template = template or load_template()
    api = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Serverless::Api")
    return tuple(t.replace("~1", "/").lower() for t in api["Properties"].get("BinaryMediaTypes", []))
