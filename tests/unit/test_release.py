"""`python -m train.<task>` with no options builds the shipped model: train/<task>/release.yaml gives
each command the options the old Makefile recipes passed, overrides behave as those recipes did, and
a run's version is the release whose options it matches."""

from __future__ import annotations

import importlib

import pytest

from train import core


class Parsed(Exception):
    """Raised by the patched parser with the options a command would train with."""


@pytest.fixture
def options(monkeypatch):
    real = core.parse_shipped_args

    def capture(parser, task, argv=None):
        raise Parsed(vars(real(parser, task, argv)))

    monkeypatch.setattr(core, "parse_shipped_args", capture)

    def parse(task: str, *argv: str) -> dict:
        with pytest.raises(Parsed) as caught:
            importlib.import_module(f"train.{task}.__main__").main(list(argv))
        return caught.value.args[0]

    return parse


BRAIN = "train/weights/brain/backbone.weights.h5"
SKIN, SKIN_SECOND = "train/weights/skin/backbone.weights.h5", "train/weights/skin/seed2018/backbone.weights.h5"


@pytest.mark.parametrize("task, expected", [
    ("brain", {"backbone": "mobilenet_v2", "weights": BRAIN, "seed": 2024, "fine_tune_epochs": 0}),
    ("skin", {"backbone": "mobilenet_v2", "weights": SKIN, "second_weights": SKIN_SECOND, "input_size": 256,
              "seed": 2017, "fine_tune_epochs": 8, "full_fine_tune_epochs": 0}),
    ("histopathology", {"backbone": "mobilenet_v2", "weights": "train/weights/histopathology/backbone.weights.h5",
                        "seed": 2016, "epochs": 25}),
    ("leukemia", {"seed": 1999, "epochs": 20, "cv_repeats": 3}),
    ("breast_survival", {"seed": 2012, "no_refit": False}),
])
def test_the_bare_command_trains_the_shipped_configuration(options, task, expected):
    parsed = options(task)
    assert {key: parsed[key] for key in expected} == expected


def test_overrides_behave_as_the_old_recipes(options):
    # INPUT_SIZE=224 rebuilt v1.4.0 with both tuned backbones
    assert options("skin", "--input-size", "224")["second_weights"] == SKIN_SECOND
    # WEIGHTS=default: ImageNet weights, no second backbone (it was paired with the tuned one)
    imagenet = options("skin", "--weights", "default")
    assert (imagenet["second_weights"], imagenet["input_size"]) == (None, 256)
    # another backbone starts from its own ImageNet weights at its own size
    other = options("skin", "--backbone", "vgg16")
    assert (other["weights"], other["second_weights"], other["input_size"]) == (None, None, None)
    assert options("brain", "--backbone", "xception")["weights"] is None
    assert options("brain", "--fine-tune-epochs", "15")["weights"] == BRAIN


def test_the_shipped_weights_are_the_committed_tuned_backbones():
    for task in ("brain", "skin", "histopathology"):
        shipped = core.Release.load(task).options
        assert (core.REPO_ROOT / shipped["weights"]).is_file()
        assert shipped["weights"] == f"train/weights/{task}/backbone.weights.h5"
    assert (core.REPO_ROOT / core.Release.load("skin").options["second_weights"]).is_file()


def test_an_entry_for_an_option_the_command_lacks_is_refused(monkeypatch, tmp_path):
    import argparse

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "release.yaml").write_text(RELEASE.replace("  seed: 1\n", "  seed: 1\n  sede: 2\n"))
    monkeypatch.setattr(core.release, "release_file", lambda task: tmp_path / task / "release.yaml")
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int)
    parser.add_argument("--input-size", type=int)
    with pytest.raises(ValueError, match=r"has no option\(s\) \['sede'\]"):
        core.parse_shipped_args(parser, "x", [])


RELEASE = """options:
  seed: 1
  input_size: 256
name: oncoserve-x-{backbone}
releases:
- {version: 1.0.0, changes: First.}
- {version: 1.1.0, options: {input_size: 224}, changes: Smaller.}
- {version: 1.2.0, options: {input_size: 256}, changes: Larger.}
data: {source: s, citation: c, license: l}
intended_use: u
out_of_scope: o
limitations: r
"""


def test_a_run_is_the_newest_release_whose_options_it_matches(monkeypatch, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "release.yaml").write_text(RELEASE)
    monkeypatch.setattr(core.release, "release_file", lambda task: tmp_path / task / "release.yaml")
    release = core.Release.load("x")
    # rebuilding an older release rewrites its changelog as it was, without the later lines
    assert release.version({"input_size": 224, "seed": 1}) == ("1.1.0", {"1.0.0": "First.", "1.1.0": "Smaller."})
    assert release.version({"input_size": 256, "seed": 1})[0] == "1.2.0"
    version, changelog = release.version({"input_size": 288, "seed": 1})  # matches no release: says so
    assert version == "1.3.0" and "{'input_size': 288}" in changelog["1.3.0"] and len(changelog) == 4
    assert release.version({"input_size": 256, "seed": 2})[0] == "1.3.0"  # another shipped option: not a release
    header = release.header({"input_size": 256, "seed": 1}, backbone="mobilenetv2")
    assert header["name"] == "oncoserve-x-mobilenetv2" and header["task"] == "x"


def test_the_committed_models_are_the_releases_their_shipped_options_build():
    import json

    facts = {"brain": {}, "skin": {"backbones": 1}, "histopathology": {"ships_tuned_backbone": True},
             "leukemia": {}, "breast_survival": {"no_refit": False}}
    for task, extra in facts.items():
        release = core.Release.load(task)
        committed = core.read_model_json(task)
        version, changelog = release.version({**release.options, **extra})
        assert (version, changelog) == (committed["version"], committed["changelog"]), task
        for key, value in release.use().items():
            assert committed[key] == value, (task, key)
        assert {k: committed["data"][k] for k in release.data} == release.data, task
        assert json.loads(core.model_json_path(task).read_text())["name"] == committed["name"]
