"""The task registry (``tasks.yaml``), read into typed entries; and the template's function blocks from it.

``template.yaml`` keeps everything shared (API, usage plan, globals, outputs) by hand; the
resources of the five functions are written from the registry between two marker comments, so a
new task is one registry entry, and a test fails when the template and the registry disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from oncoserve_runtime.typed_json import from_json

REPO_ROOT = Path(__file__).resolve().parents[1]
REGISTRY_FILE = REPO_ROOT / "tasks.yaml"
TEMPLATE_FILE = REPO_ROOT / "template.yaml"
BEGIN = "  # --- functions: written by `make openapi` from tasks.yaml; edit the registry, not this block ---\n"
END = "  # --- end of the functions written from tasks.yaml ---\n"


@dataclass(frozen=True, kw_only=True)
class TaskEntry:
    prefix: str
    posts: tuple[str, ...]
    memory_mb: int
    threads: int = 1
    input: Literal["image", "expression"]
    summary: str

    def events(self) -> tuple[tuple[str, str, str], ...]:
        """(event name, METHOD, path) of every route the task's function serves, as the template states
        them: the posts; for an image task (its routes take S3 inputs) uploads and jobs; model, health."""
        posts = [*self.posts, *(("uploads", "jobs") if self.input == "image" else ())]
        return (*((name.title(), "POST", f"/{self.prefix}/{name}") for name in posts),
                *((("JobStatus", "GET", f"/{self.prefix}/jobs/{{id}}"),) if self.input == "image" else ()),
                ("Model", "GET", f"/{self.prefix}/model"), ("Health", "GET", f"/{self.prefix}/health"))

    def routes(self) -> tuple[tuple[str, str], ...]:
        """(METHOD, path) of every route the task's function serves."""
        return tuple((method, path) for _, method, path in self.events())


@dataclass(frozen=True, kw_only=True)
class Registry:
    tasks: dict[str, TaskEntry]


def load_registry(path: Path = REGISTRY_FILE) -> dict[str, TaskEntry]:
    return from_json(Registry, yaml.safe_load(path.read_text()), path.name).tasks


TASKS = load_registry()


def logical_id(task: str) -> str:
    return "".join(part.title() for part in task.split("_")) + "Function"


# What an image function needs of the input bucket, and no more: read any object (S3 inputs),
# list the bucket (so a missing key is S3's 404, not a 403 that hides it), sign uploads under its own
# prefix (a presigned URL acts with the signer's permission) and write its jobs' records under its
# own jobs/ prefix; and invoke itself, and nothing else, for a job's chunks. Its name is fixed so
# that the policy can name it without a circular reference.
_INPUT_BUCKET_ACCESS = """\
      FunctionName: !Sub "${{AWS::StackName}}-{prefix}"
      EventInvokeConfig:
        MaximumRetryAttempts: 2
        MaximumEventAgeInSeconds: 3600
      Policies:
        - Statement:
            - Effect: Allow
              Action: s3:GetObject
              Resource: !Sub "${{InputBucket.Arn}}/*"
            - Effect: Allow
              Action: s3:ListBucket
              Resource: !GetAtt InputBucket.Arn
            - Effect: Allow
              Action: s3:PutObject
              Resource:
                - !Sub "${{InputBucket.Arn}}/uploads/{prefix}/*"
                - !Sub "${{InputBucket.Arn}}/jobs/{prefix}/*"
            - Effect: Allow
              Action: lambda:InvokeFunction
              Resource: !Sub "arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:${{AWS::StackName}}-{prefix}"
"""
_INPUT_BUCKET_VARIABLES = {"ONCOSERVE_INPUT_BUCKET": "!Ref InputBucket", "ONCOSERVE_JOB_MAX_CONCURRENCY": "!Ref JobMaxConcurrency"}


def _environment(entry: TaskEntry) -> str:
    """The function's own variables (the shared ones are the template's Globals)."""
    variables = dict(_INPUT_BUCKET_VARIABLES) if entry.input == "image" else {}
    if entry.threads != 1:
        variables["ONCOSERVE_NUM_THREADS"] = f'"{entry.threads}"'
    lines = "".join(f"          {name}: {value}\n" for name, value in variables.items())
    return f"      Environment:\n        Variables:\n{lines}" if variables else ""


def _yaml_path(path: str) -> str:
    """Quoted where a path parameter's braces would read as YAML flow syntax."""
    return f'"{path}"' if "{" in path else path


def function_block(task: str, entry: TaskEntry) -> str:
    events = "".join(
        f"        {name}:\n"
        f"          Type: Api\n"
        f"          Properties: {{RestApiId: !Ref OncoServeApi, Path: {_yaml_path(path)}, Method: {method.lower()}}}\n"
        for name, method, path in entry.events())
    return (f"  {logical_id(task)}:\n    Type: AWS::Serverless::Function\n    Properties:\n"
            f"      PackageType: Image\n      MemorySize: {entry.memory_mb}\n{_environment(entry)}"
            f"{_INPUT_BUCKET_ACCESS.format(prefix=entry.prefix) if entry.input == 'image' else ''}"
            f"      Events:\n{events}"
            f"    Metadata:\n      Dockerfile: Dockerfile\n      DockerContext: ./functions\n"
            f"      DockerTag: {entry.prefix}-v1\n      DockerBuildArgs: {{TASK: {task}}}\n")


def template_with_functions(text: str, tasks: dict[str, TaskEntry] = TASKS) -> str:
    """``template.yaml``'s text with the block between the markers written from ``tasks``."""
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return head + BEGIN + "\n".join(function_block(task, entry) for task, entry in tasks.items()) + END + tail
