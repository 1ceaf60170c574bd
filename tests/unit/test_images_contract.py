"""What goes into a function image: pinned packages, no TensorFlow, one Dockerfile for all."""

from pathlib import Path

import pytest

from local.template import function_specs, load_template

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
REQUIREMENTS = [FUNCTIONS / "requirements.txt", FUNCTIONS / "requirements-tracing.txt"]


def requirement_lines(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


@pytest.mark.parametrize("path", REQUIREMENTS, ids=lambda p: p.name)
def test_function_requirements_are_pinned_and_tensorflow_free(path):
    for line in requirement_lines(path):
        name, _, version = line.partition("==")
        assert version, f"{line!r} is not pinned with =="
        assert name.lower() not in {"tensorflow", "tensorflow-cpu", "keras", "tf-keras", "torch", "jax", "jaxlib"}, line


def test_every_function_uses_the_one_dockerfile_with_its_task():
    template = load_template()
    for spec in function_specs():
        metadata = template["Resources"][spec.logical_id]["Metadata"]
        assert metadata["Dockerfile"] == "Dockerfile" and metadata["DockerContext"] == "./functions"
        assert (FUNCTIONS / metadata["DockerBuildArgs"]["TASK"] / "app.py").is_file()


def test_dockerfile_starts_from_the_lambda_python_image():
    dockerfile = (FUNCTIONS / "Dockerfile").read_text()
    assert "FROM public.ecr.aws/lambda/python:3.12" in dockerfile
    assert 'CMD ["app.lambda_handler"]' in dockerfile
