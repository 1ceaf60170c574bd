"""Every committed model.json is a serving contract that follows model.schema.json, names its
artifact's true sha256 and loads into its function's typed contract; the training record is apart."""

import json
from pathlib import Path

import jsonschema
import pytest

from oncoserve_runtime import sha256_of

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
SCHEMA = json.loads((FUNCTIONS / "model.schema.json").read_text())
MODEL_JSONS = sorted(FUNCTIONS.glob("*/model/model.json"))


def test_at_least_the_leukemia_model_is_committed():
    assert FUNCTIONS / "leukemia" / "model" / "model.json" in MODEL_JSONS


@pytest.mark.parametrize("path", MODEL_JSONS, ids=lambda p: p.parts[-3])
def test_model_json_is_valid_and_matches_its_artifact(path):
    metadata = json.loads(path.read_text())
    jsonschema.validate(metadata, SCHEMA)
    assert metadata["task"] == path.parts[-3]
    artifact = path.parent / metadata["artifact"]["file"]
    assert sha256_of(artifact) == metadata["artifact"]["sha256"]
    assert artifact.stat().st_size == metadata["artifact"]["bytes"] <= 25 * 1024 * 1024
    record = json.loads((path.parent / "training.json").read_text())
    assert (record["schema"], record["name"], record["version"]) == (
        "oncoserve.training/v1", metadata["name"], metadata["version"])
    assert not set(record) & set(metadata) - {"schema", "name", "version"}, "a key in both files"
    for plot in record.get("plots", []):
        assert (path.parents[1] / plot).is_file(), plot
    card = path.parents[1] / "MODEL_CARD.md"
    assert card.is_file() and "not a medical device" in card.read_text()


def test_model_json_rounds_what_people_read_but_keeps_thresholds_exact():
    from train.core import rounded

    written = rounded({"metrics": {"auc": 0.939123, "threshold": 0.359375},
                       "output": {"threshold": 0.359375, "thresholds_by_modality": {"ct": 0.10546875}}})
    assert written["metrics"]["auc"] == 0.9391
    # an int8 model scores on 1/256 steps: 0.3594 would flip every patch scored exactly 0.359375
    assert written["output"]["threshold"] == written["metrics"]["threshold"] == 0.359375
    assert written["output"]["thresholds_by_modality"]["ct"] == 0.10546875


def test_a_threshold_record_keeps_its_threshold_exact_and_rounds_its_figures():
    from train.core import rounded

    written = rounded({"training": {"threshold": {"threshold": 0.35332992672920227, "rule": "sensitivity >= 0.9",
                                                  "val_sensitivity": 0.9027777777777778}}})
    record = written["training"]["threshold"]
    assert record["threshold"] == 0.35332992672920227
    assert record["val_sensitivity"] == 0.9028 and record["rule"] == "sensitivity >= 0.9"


@pytest.mark.parametrize("path", MODEL_JSONS, ids=lambda p: p.parts[-3])
def test_the_schema_and_the_typed_contract_agree_on_a_broken_copy(path):
    # The schema CI checks and the reader a function runs are generated from the same types: both
    # accept the committed file, and both refuse it with a key missing from its output block.
    from oncoserve_runtime.typed_json import ContractError, from_json
    from tests.conftest import load_function_app

    contract_type = load_function_app(path.parts[-3]).MODEL.contract_type
    document = json.loads(path.read_text())
    from_json(contract_type, document)
    del document["output"]["labels"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)
    with pytest.raises(ContractError, match="output.labels: required key missing"):
        from_json(contract_type, document)
