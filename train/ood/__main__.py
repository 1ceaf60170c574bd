"""``python -m train.ood <task>``: measure a committed image model's out-of-distribution guard again
(``functions/<task>/ood_evaluation.json``; ``python -m train.<task> --card-only`` then renders the
card). The training commands run the same evaluation for their own model, expression models included."""

from __future__ import annotations

import argparse
import json

from train.core import function_dir
from train.ood.evaluate import evaluate_image_model, write_evaluation
from train.ood.families import IMAGE_TASKS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=IMAGE_TASKS)
    parser.add_argument("--seed", type=int, default=None, help="default: the model's training seed")
    args = parser.parse_args(argv)
    model_dir = function_dir(args.task) / "model"
    metadata = json.loads((model_dir / "model.json").read_text())
    if "ood" not in metadata:
        parser.error(f"{args.task}'s committed model has no out-of-distribution score")
    seed = args.seed if args.seed is not None else json.loads((model_dir / "training.json").read_text())["training"]["seed"]
    write_evaluation(args.task, evaluate_image_model(args.task, (model_dir / "model.tflite").read_bytes(), metadata,
                                                     seed=seed))


if __name__ == "__main__":
    main()
