"""`python -m train.<task>` with no options builds the shipped model: train/shipped.yaml gives each
command the options the old Makefile recipes passed, and overrides behave as those recipes did."""

from __future__ import annotations

import importlib

import pytest

from train import common


class Parsed(Exception):
    """Raised by the patched parser with the options a command would train with."""


@pytest.fixture
def options(monkeypatch):
    real = common.parse_shipped_args

    def capture(parser, task, argv=None):
        raise Parsed(vars(real(parser, task, argv)))

    monkeypatch.setattr(common, "parse_shipped_args", capture)

    def parse(task: str, *argv: str) -> dict:
        with pytest.raises(Parsed) as caught:
            importlib.import_module(f"train.{task}").main(list(argv))
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
    import yaml

    shipped = yaml.safe_load(common.SHIPPED_FILE.read_text())
    for task in ("brain", "skin", "histopathology"):
        assert (common.REPO_ROOT / shipped[task]["weights"]).is_file()
        assert shipped[task]["weights"] == f"train/weights/{task}/backbone.weights.h5"
    assert (common.REPO_ROOT / shipped["skin"]["second_weights"]).is_file()


def test_an_entry_for_an_option_the_command_lacks_is_refused(monkeypatch, tmp_path):
    import argparse

    (tmp_path / "shipped.yaml").write_text("x:\n  seed: 1\n  sede: 2\n")
    monkeypatch.setattr(common, "SHIPPED_FILE", tmp_path / "shipped.yaml")
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int)
    with pytest.raises(ValueError, match=r"has no option\(s\) \['sede'\]"):
        common.parse_shipped_args(parser, "x", [])
