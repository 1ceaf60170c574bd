"""template.yaml states the API contract: keys on every route, a usage plan, five image functions."""

import pytest

from local.template import function_specs, load_template

def _with_service_routes(prefix: str, *posts: str) -> set[tuple[str, str]]:
    return {*(("POST", f"{prefix}/{name}") for name in posts), ("GET", f"{prefix}/model"), ("GET", f"{prefix}/health")}


CONTRACT = {
    "HistopathologyFunction": _with_service_routes("/histopathology", "predict", "region"),
    "BrainFunction": _with_service_routes("/brain", "predict"),
    "SkinFunction": _with_service_routes("/skin", "predict"),
    "LeukemiaFunction": _with_service_routes("/leukemia", "predict"),
    "BreastSurvivalFunction": _with_service_routes("/breast-survival", "predict"),
}


@pytest.fixture(scope="module")
def template():
    return load_template()


def test_routes_match_the_api_contract():
    assert {spec.logical_id: set(spec.routes) for spec in function_specs()} == CONTRACT


def test_every_route_requires_an_api_key_with_throttle_and_quota(template):
    api = template["Resources"]["OncoServeApi"]
    assert api["Type"] == "AWS::Serverless::Api"
    auth = api["Properties"]["Auth"]
    assert auth["ApiKeyRequired"] is True
    plan = auth["UsagePlan"]
    assert plan["CreateUsagePlan"] == "PER_API"
    assert {"RateLimit", "BurstLimit"} <= set(plan["Throttle"]) and {"Limit", "Period"} <= set(plan["Quota"])
    for logical_id in CONTRACT:
        for event in template["Resources"][logical_id]["Properties"]["Events"].values():
            assert event["Properties"]["RestApiId"] == {"Ref": "OncoServeApi"}
            assert event["Properties"].get("Auth", {}).get("ApiKeyRequired", True) is True


def test_functions_are_container_images_with_build_metadata(template):
    for logical_id in CONTRACT:
        resource = template["Resources"][logical_id]
        assert resource["Properties"]["PackageType"] == "Image"
        assert {"Dockerfile", "DockerContext", "DockerTag"} <= set(resource["Metadata"])
        assert resource["Properties"]["MemorySize"] >= 128


def test_outputs_give_testers_the_url_and_key(template):
    outputs = template["Outputs"]
    assert "execute-api" in outputs["ApiUrl"]["Value"]["Sub"]
    assert outputs["ApiKeyId"]["Value"] == {"Ref": "OncoServeApiApiKey"}
