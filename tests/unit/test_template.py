"""template.yaml states the API contract: keys on every route, a usage plan, five image functions."""

import pytest

from contract.registry import TASKS
from contract.registry import logical_id as function_id
from local.template import function_specs, load_template

CONTRACT = {function_id(task): set(entry.routes()) for task, entry in TASKS.items()}


def test_the_registry_states_the_five_tasks_and_their_public_routes():
    # Written out once here, so that a registry edit that drops or renames a route is seen.
    assert CONTRACT["HistopathologyFunction"] == {("POST", "/histopathology/predict"), ("POST", "/histopathology/region"),
                                                  ("POST", "/histopathology/slide"),
                                                  ("POST", "/histopathology/uploads"), ("POST", "/histopathology/jobs"),
                                                  ("GET", "/histopathology/jobs/{id}"), ("GET", "/histopathology/model"),
                                                  ("GET", "/histopathology/health")}
    assert ("POST", "/leukemia/uploads") not in CONTRACT["LeukemiaFunction"]  # no image, no upload
    assert ("POST", "/leukemia/jobs") not in CONTRACT["LeukemiaFunction"]  # nothing in the bucket to run over
    assert CONTRACT["BreastSurvivalFunction"] >= {("POST", "/breast-survival/predict")}
    assert set(CONTRACT) == {"HistopathologyFunction", "BrainFunction", "SkinFunction", "LeukemiaFunction",
                             "BreastSurvivalFunction"}


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


def test_the_input_bucket_is_private_encrypted_tls_only_and_expires_uploads_and_jobs(template):
    bucket = template["Resources"]["InputBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    uploads, jobs = bucket["LifecycleConfiguration"]["Rules"]
    assert uploads["Prefix"] == "uploads/" and uploads["ExpirationInDays"] == {"Ref": "UploadRetentionDays"}
    assert jobs["Prefix"] == "jobs/" and jobs["ExpirationInDays"] == {"Ref": "JobRetentionDays"}
    (deny,) = template["Resources"]["InputBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("task", list(TASKS))
def test_only_image_functions_reach_the_bucket_and_each_writes_and_invokes_only_its_own(template, task):
    properties = template["Resources"][function_id(task)]["Properties"]
    if TASKS[task].input != "image":
        assert "Policies" not in properties and "Environment" not in properties
        return
    assert properties["Environment"]["Variables"]["ONCOSERVE_INPUT_BUCKET"] == {"Ref": "InputBucket"}
    (policy,) = properties["Policies"]
    grants = {statement["Action"]: statement["Resource"] for statement in policy["Statement"]}
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    prefix = TASKS[task].prefix
    name = f"${{AWS::StackName}}-{prefix}"
    assert grants == {"s3:GetObject": {"Sub": "${InputBucket.Arn}/*"},
                      "s3:ListBucket": {"GetAtt": "InputBucket.Arn"},
                      "s3:PutObject": [{"Sub": f"${{InputBucket.Arn}}/uploads/{prefix}/*"},
                                       {"Sub": f"${{InputBucket.Arn}}/jobs/{prefix}/*"}],
                      # a job's chunks: the function invokes itself, by the name the template gives it
                      "lambda:InvokeFunction": {"Sub": f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:{name}"}}
    assert properties["FunctionName"] == {"Sub": name}
    assert properties["EventInvokeConfig"]["MaximumRetryAttempts"] == 2
    assert properties["Environment"]["Variables"]["ONCOSERVE_JOB_MAX_CONCURRENCY"] == {"Ref": "JobMaxConcurrency"}
