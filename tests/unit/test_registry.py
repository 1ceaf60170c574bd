"""tasks.yaml is the one list of tasks: the template, the model schema, the functions, the events
and the bench follow it, and what is generated from it is committed up to date."""

from __future__ import annotations

import json

import pytest

from contract.__main__ import GENERATED
from contract.registry import TASKS, load_registry, logical_id
from local.template import function_specs
from tests.conftest import FUNCTIONS_DIR, REPO_ROOT, load_function_app


@pytest.mark.parametrize("path", list(GENERATED), ids=lambda p: p.name)
def test_generated_files_are_committed_up_to_date(path):
    assert path.read_text() == GENERATED[path](), f"{path.name} is stale: run `make openapi`"


def test_the_template_has_one_function_per_registered_task_as_registered():
    specs = {spec.task: spec for spec in function_specs()}
    assert list(specs) == list(TASKS)
    for task, entry in TASKS.items():
        spec = specs[task]
        assert (spec.logical_id, spec.memory_mb, set(spec.routes)) == (logical_id(task), entry.memory_mb, set(entry.routes()))


@pytest.mark.parametrize("task", list(TASKS))
def test_each_function_serves_its_registered_routes_and_input_kind(task):
    app = load_function_app(task)
    assert {(route.method, route.path) for route in app.lambda_handler.routes} == set(TASKS[task].routes())
    contract = json.loads((FUNCTIONS_DIR / task / "model" / "model.json").read_text())
    assert contract["input"]["kind"] == TASKS[task].input


def test_the_model_schema_lists_exactly_the_registered_tasks():
    schema = json.loads((FUNCTIONS_DIR / "model.schema.json").read_text())
    assert schema["properties"]["task"]["enum"] == list(TASKS)


def test_every_task_has_committed_and_generated_event_writers():
    from local.make_events import GENERATED as FROM_DATA, STATIC

    assert set(STATIC) == set(FROM_DATA) == set(TASKS)
    for task in TASKS:
        assert (REPO_ROOT / "events" / task / "expected.json").is_file()


def test_a_registry_entry_with_a_typo_is_refused_naming_it(tmp_path):
    from oncoserve_runtime.typed_json import ContractError

    (tmp_path / "tasks.yaml").write_text("tasks:\n  x:\n    prefix: x\n    posts: [predict]\n    memory_mb: 512\n"
                                         "    input: text\n    summary: s\n")
    with pytest.raises(ContractError, match=r"tasks.x.input: expected one of \['image', 'expression'\]"):
        load_registry(tmp_path / "tasks.yaml")
