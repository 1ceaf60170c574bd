"""What every training script shares: data root, seeding, metrics, plots and model.json.

Data are read from ``ONCOSERVE_DATA_ROOT`` (default ``../shared/data`` beside the repository) and
never copied into the repository.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
from pathlib import Path
from typing import Any, Sequence

import numpy as np

# Quiet TensorFlow's C++ start-up chatter; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"
BUILD_DIR = REPO_ROOT / "build"


def data_root() -> Path:
    """``ONCOSERVE_DATA_ROOT`` or ``<repo>/../shared/data``."""
    return Path(os.environ.get("ONCOSERVE_DATA_ROOT") or REPO_ROOT.parent / "shared" / "data").resolve()


def task_data_dir(task: str) -> Path:
    path = data_root() / task
    if not path.is_dir():
        raise FileNotFoundError(f"no data for {task!r} at {path}; set ONCOSERVE_DATA_ROOT")
    return path


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and Keras (and its backend); ask TF for deterministic kernels."""
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed)
    import keras

    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def function_dir(task: str) -> Path:
    return FUNCTIONS_DIR / task


def export_saved_model(model: Any, task: str) -> Path:
    """The trained Keras model as a TF SavedModel in build/<task>/saved_model (git-ignored): the
    baseline `make bench` runs with TensorFlow and converts for ONNX Runtime."""
    path = build_dir(task) / "saved_model"
    model.export(str(path), format="tf_saved_model", verbose=False)
    return path


def build_dir(task: str) -> Path:
    path = BUILD_DIR / task
    path.mkdir(parents=True, exist_ok=True)
    return path


def auc_by_group(y_true: np.ndarray, p_positive: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """ROC-AUC within each group (e.g. each source dataset), groups in sorted order."""
    return {str(g): binary_metrics(y_true[groups == g], p_positive[groups == g], 0.5)["roc_auc"]
            for g in sorted(set(groups.tolist()))}


def mean_auc_by_group(y_true: np.ndarray, p_positive: np.ndarray, groups: np.ndarray) -> float:
    """The mean of the per-group AUCs: a model must hold up in every group, not only the largest."""
    return float(np.mean(list(auc_by_group(y_true, p_positive, groups).values())))


def binary_metrics(y_true: np.ndarray, p_positive: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy, sensitivity, specificity, balanced accuracy, precision, F1, ROC-AUC, PR-AUC, confusion."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = np.asarray(y_true).astype(int)
    confusion = confusion_counts(y_true, p_positive, threshold)
    tp, tn, fp, fn = confusion["tp"], confusion["tn"], confusion["fp"], confusion["fn"]
    sensitivity = tp / (tp + fn) if tp + fn else float("nan")
    specificity = tn / (tn + fp) if tn + fp else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    f1 = 2 * precision * sensitivity / (precision + sensitivity) if precision + sensitivity else 0.0
    both_classes = len(np.unique(y_true)) == 2
    return {
        "n": int(len(y_true)),
        "threshold": float(threshold),
        "accuracy": (tp + tn) / len(y_true),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "balanced_accuracy": (sensitivity + specificity) / 2,
        "precision": precision,
        "f1": f1,
        "roc_auc": float(roc_auc_score(y_true, p_positive)) if both_classes else None,
        "pr_auc": float(average_precision_score(y_true, p_positive)) if both_classes else None,
        "confusion": confusion,
    }


def confusion_counts(y_true: np.ndarray, p_positive: np.ndarray, threshold: float) -> dict[str, int]:
    """tp / fn / fp / tn, the positive class predicted when its probability reaches ``threshold``."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = (np.asarray(p_positive) >= threshold).astype(int)
    return {"tp": int(((y_pred == 1) & (y_true == 1)).sum()), "fn": int(((y_pred == 0) & (y_true == 1)).sum()),
            "fp": int(((y_pred == 1) & (y_true == 0)).sum()), "tn": int(((y_pred == 0) & (y_true == 0)).sum())}


# Served as written: must equal the value the reported metrics were computed at.
EXACT_KEYS = {"threshold", "thresholds_by_modality"}


def rounded(value: Any, digits: int = 4) -> Any:
    """Round floats to ``digits`` significant digits inside nested dicts/lists (metadata humans read),
    except a number, or a mapping of numbers, under ``EXACT_KEYS``: an int8 model's probabilities sit
    on 1/256 steps, so a threshold rounded from 0.359375 to 0.3594 moved every patch scored exactly
    0.359375 to the other label. A record under such a key (the threshold with its rule and
    validation figures) is rounded like any other, its own ``threshold`` entry kept."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: v if k in EXACT_KEYS and is_numeric(v) else rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def is_numeric(value: Any) -> bool:
    """A number, or a mapping whose values are all numbers (thresholds per modality)."""
    if isinstance(value, dict):
        return all(isinstance(v, (int, float)) for v in value.values())
    return isinstance(value, (int, float))


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("keras", "tensorflow", "tensorflow-cpu", "ai-edge-litert", "numpy", "scikit-learn"):
        try:
            found[package.replace("-", "_")] = version(package)
        except PackageNotFoundError:
            continue
    if "tensorflow_cpu" in found:
        found.setdefault("tensorflow", found.pop("tensorflow_cpu"))
    return found


SHIPPED_FILE = REPO_ROOT / "train" / "shipped.yaml"
BACKBONE_BOUND = ("weights", "second_weights", "input_size")  # meaningful only for the backbone they name


def parse_shipped_args(parser: argparse.ArgumentParser, task: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a training command's options, defaulting to ``task``'s entry in ``train/shipped.yaml``.

    So the bare command builds the shipped model; an option given overrides its entry, and another
    ``--backbone`` drops the entries tied to the shipped one (its tuned weights and input size)."""
    import yaml

    shipped = yaml.safe_load(SHIPPED_FILE.read_text())[task]
    options = {action.dest for action in parser._actions}
    unknown = sorted(set(shipped) - options)
    if unknown:
        raise ValueError(f"{SHIPPED_FILE.name}: {task} has no option(s) {unknown}")
    code_defaults = {key: parser.get_default(key) for key in shipped}
    parser.set_defaults(**shipped)
    args = parser.parse_args(argv)
    # Entries tied to the shipped backbone, or to its weights: another backbone drops all of them,
    # other weights drop the second backbone that was paired with the shipped ones.
    backbone_changed = "backbone" in shipped and args.backbone != shipped["backbone"]
    weights_changed = "weights" in shipped and args.weights != shipped["weights"]
    for key in BACKBONE_BOUND:
        tied = backbone_changed or (key == "second_weights" and weights_changed)
        if tied and key in shipped and getattr(args, key) == shipped[key]:
            setattr(args, key, code_defaults[key])
    return args


def balanced_class_weight(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Keras ``class_weight`` that gives every class the same total weight (n / (k * count))."""
    counts = np.bincount(labels, minlength=n_classes)
    return {i: float(len(labels) / (n_classes * max(counts[i], 1))) for i in range(n_classes)}


def write_model_json(task: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write the serving contract ``functions/<task>/model/model.json`` and the training record
    ``training.json`` beside it (floats rounded); return both merged, as the card renderers read them.

    The contract holds the keys of ``oncoserve_runtime.contract`` (what a function loads at cold
    start); everything else (changelog, candidates, conversion tables, tuning runs, plots) is the
    record. ``training.experiments`` (runs measured by other commands, e.g. ``make
    experiment-histopathology``) is carried over from the record being replaced: retraining the
    shipped model does not redo them."""
    from oncoserve_runtime.contract import CONTRACT_KEYS, CONTRACT_SCHEMA

    previous = read_model_json(task) if model_json_path(task).exists() else {}
    experiments = previous.get("training", {}).get("experiments")
    if experiments and "experiments" not in metadata.get("training", {}):
        metadata = {**metadata, "training": {**metadata["training"], "experiments": experiments}}
    final = rounded({"schema": CONTRACT_SCHEMA, "created": dt.date.today().isoformat(), **metadata,
                     "versions": library_versions()})
    contract = {key: value for key, value in final.items() if key in CONTRACT_KEYS}
    record = {"schema": TRAINING_RECORD_SCHEMA, "name": final["name"], "version": final["version"],
              **{key: value for key, value in final.items() if key not in CONTRACT_KEYS}}
    for path, document in ((model_json_path(task), contract), (training_record_path(task), record)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
        print(f"wrote {path.relative_to(REPO_ROOT)}", flush=True)
    return final


TRAINING_RECORD_SCHEMA = "oncoserve.training/v1"


def model_json_path(task: str) -> Path:
    return function_dir(task) / "model" / "model.json"


def training_record_path(task: str) -> Path:
    return function_dir(task) / "model" / "training.json"


def read_model_json(task: str) -> dict[str, Any]:
    """The contract and the training record of ``task``'s committed model, as one document."""
    contract = json.loads(model_json_path(task).read_text())
    record_path = training_record_path(task)
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    return {**contract, **{key: value for key, value in record.items() if key not in ("schema", "name", "version")}}


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib, headless). Each returns the written path, relative to the function folder.
# ---------------------------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plots_dir(task: str) -> Path:
    path = function_dir(task) / "plots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def plot_confusion(task: str, confusion: np.ndarray, labels: Sequence[str], title: str, name: str) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.6 + 0.4 * len(labels), 3.2 + 0.4 * len(labels)))
    ax.imshow(confusion, cmap="Blues")
    for (i, j), count in np.ndenumerate(confusion):
        ax.text(j, i, str(int(count)), ha="center", va="center",
                color="white" if count > confusion.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    path = plots_dir(task) / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def confusion_grid(confusion: dict[str, int]) -> np.ndarray:
    """binary_metrics' confusion dict as a 2x2 grid: rows true (negative, positive), columns predicted."""
    return np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])


def plot_roc_pr(task: str, curves: dict[str, tuple[np.ndarray, np.ndarray]], name: str) -> Path:
    """ROC and PR curves side by side; ``curves`` maps a slice name to (y_true, p_positive)."""
    from sklearn.metrics import auc, precision_recall_curve, roc_curve

    plt = _pyplot()
    fig, (ax_roc, ax_pr) = plt.subplots(1, 2, figsize=(9, 4))
    for label, (y_true, p) in curves.items():
        fpr, tpr, _ = roc_curve(y_true, p)
        ax_roc.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
        precision, recall, _ = precision_recall_curve(y_true, p)
        ax_pr.plot(recall, precision, label=label)
    ax_roc.plot([0, 1], [0, 1], "k:", linewidth=0.8)
    ax_roc.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
    ax_pr.set(xlabel="recall (sensitivity)", ylabel="precision", title="Precision-recall")
    ax_roc.legend(loc="lower right", fontsize=8)
    ax_pr.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path = plots_dir(task) / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_history(task: str, history: dict[str, list[float]], name: str = "training_curves") -> Path:
    plt = _pyplot()
    # One panel per quantity: "x" with its "val_x" beside it; a "val_x" without "x" gets its own.
    keys = [k for k in history if not k.startswith("val_") or k[4:] not in history]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        ax.plot(history[key], label="val" if key.startswith("val_") else "train")
        if f"val_{key}" in history:
            ax.plot(history[f"val_{key}"], label="val")
        ax.set(title=key, xlabel="epoch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = plots_dir(task) / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------
# Model card: rendered from model.json so that no figure is ever copied by hand.
# ---------------------------------------------------------------------------------------------

def _format(value: Any, name: str = "") -> str:
    if isinstance(value, float):
        is_p_value = name.endswith("_p") or "_p_" in name
        return f"{value:.1e}" if is_p_value or 0 < abs(value) < 1e-3 else f"{value:.3f}"
    return "—" if value is None else str(value)


def metrics_table(metrics: dict[str, dict[str, Any]]) -> str:
    """Markdown table: one row per slice, one column per scalar metric any slice has."""
    columns: list[str] = []
    for values in metrics.values():
        for name, value in values.items():
            scalar = isinstance(value, (int, float)) and not isinstance(value, bool)
            if scalar and name not in ("n", "threshold") and name not in columns:
                columns.append(name)
    lines = ["| split | slice | n | " + " | ".join(columns) + " |", "|---" * (len(columns) + 3) + "|"]
    for split, values in metrics.items():
        lines.append(f"| {split} | {values.get('slice', '')} | {_format(values.get('n'))} | "
                     + " | ".join(_format(values.get(name), name) for name in columns) + " |")
    return "\n".join(lines)


def conversion_table(conversion: dict[str, Any], metrics: dict[str, str], latency: tuple[str, str]) -> str:
    """Markdown table of the converted variants for a model card: size, each metric with its change
    against float32, latency (``(key, column title)``), parity with Keras; the shipped one in bold."""
    reference = conversion["variants"]["float32"]
    latency_key, latency_title = latency
    header = ["variant", "bytes", *metrics.values(), latency_title, "max abs Δ vs Keras"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, figures in conversion["variants"].items():
        if "failed" in figures:
            cells = [f"fails at inference: `{figures['failed']}`"] + ["—"] * len(metrics)
        else:
            cells = [f"{figures[k]:.4f} ({figures[k] - reference[k]:+.4f})" for k in metrics]
            cells.append(f"{figures[latency_key]:.1f}" if latency_key in figures else "—")
        shown = f"**{name}** (shipped)" if name == conversion["shipped"] else name
        lines.append("| " + " | ".join([shown, f"{figures['bytes']:,}", *cells,
                                          f"{figures['max_abs_diff_vs_keras']:.1e}"]) + " |")
    return "\n".join(lines)


def write_model_card(task: str, metadata: dict[str, Any], *, overview: str, evaluation: str) -> Path:
    """Write ``functions/<task>/MODEL_CARD.md`` (Hugging Face / Model Card Toolkit sections)."""
    data = metadata["data"]
    plots = "\n".join(f"![{Path(p).stem.replace('_', ' ')}]({p})" for p in metadata.get("plots", []))
    card = f"""# Model card: {metadata['name']} v{metadata['version']}

> **Research software, not a medical device.** Not for diagnosis, treatment or any clinical
> decision. Outputs have not been validated prospectively or on data from other sites.

{overview.strip()}

## Model details
- Task: `{task}`; labels {', '.join(f'`{l}`' for l in metadata['output']['labels'])}
- Artifact: `model/{metadata['artifact']['file']}` ({metadata['artifact']['bytes']:,} bytes,
  {metadata['artifact'].get('variant', 'float32')}), sha256 `{metadata['artifact']['sha256']}`
- Served by LiteRT (`ai-edge-litert`) in an AWS Lambda container; trained with Keras
  {metadata['versions'].get('keras', '?')} on TensorFlow {metadata['versions'].get('tensorflow', '?')}
- Reproduce: `{metadata.get('training', {}).get('command', 'make train-' + task)}` (seeded)
- Changelog: [CHANGELOG.md](CHANGELOG.md) (one line per version); how each version was chosen: "Development history" below

## Intended use
{metadata['intended_use']}

**Out of scope:** {metadata['out_of_scope']}

## Training and evaluation data
- Source: {data['source']}
- Citation: {data['citation']}
- **Licence: {data['license']}**
- Splits: {json.dumps(data['splits'])}

## Evaluation
{metrics_table(metadata['metrics'])}

{evaluation.strip()}

{plots}

## Development history
{development_history(task)}

## Risks and limitations
{metadata['limitations']}

## How to call it
`POST /{task.replace('_', '-')}/predict` with an `x-api-key` header; see the README for the body
and `events/{task}/` for good and bad requests.
"""
    path = function_dir(task) / "MODEL_CARD.md"
    path.write_text(card)
    write_changelog(task, metadata)
    return path


def development_history(task: str) -> str:
    """``functions/<task>/history.md`` (hand-written narrative of how each version was chosen), without its comment."""
    text = (function_dir(task) / "history.md").read_text()
    return text.split("-->", 1)[1].strip() if text.lstrip().startswith("<!--") else text.strip()


def write_changelog(task: str, metadata: dict[str, Any]) -> Path:
    """``functions/<task>/CHANGELOG.md``: one line per version, newest first (as MONAI bundles keep theirs)."""
    lines = [f"- **{version}**: {text.rstrip('.')}." for version, text in reversed(metadata["changelog"].items())]
    path = function_dir(task) / "CHANGELOG.md"
    path.write_text(f"# Changelog: {metadata['name']}\n\nWritten from `model/training.json` by the training command; "
                    f"the narrative is the model card's \"Development history\".\n\n" + "\n".join(lines) + "\n")
    return path


def choose_threshold(y_true: np.ndarray, p_positive: np.ndarray, *, min_sensitivity: float | None = None) -> dict[str, Any]:
    """Pick the decision threshold on validation data.

    With ``min_sensitivity``: the *highest* threshold whose sensitivity reaches it (the most
    specificity that sensitivity allows). Without: the threshold maximising Youden's J
    (sensitivity + specificity - 1).
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(y_true, p_positive)
    thresholds = np.clip(thresholds, 0.0, 1.0)
    if min_sensitivity is not None:
        reaching = np.flatnonzero(tpr >= min_sensitivity)
        index = int(reaching[0])  # roc_curve orders thresholds high → low
        rule = f"highest threshold with validation sensitivity >= {min_sensitivity}"
    else:
        index = int(np.argmax(tpr - fpr))
        rule = "maximum Youden's J on validation"
    return {"threshold": float(thresholds[index]), "rule": rule,
            "val_sensitivity": float(tpr[index]), "val_specificity": float(1 - fpr[index])}


def sensitivity_by_group(y_true: np.ndarray, p_positive: np.ndarray, groups: np.ndarray,
                         threshold: float) -> dict[str, dict[str, Any]]:
    """Sensitivity and specificity at ``threshold`` within each group (e.g. image source): a threshold that
    meets its target over all images can miss it within one group."""
    y_true, p_positive, groups = np.asarray(y_true), np.asarray(p_positive), np.asarray(groups)
    out = {}
    for group in np.unique(groups):
        c = confusion_counts(y_true[groups == group], p_positive[groups == group], threshold)
        positives, negatives = c["tp"] + c["fn"], c["fp"] + c["tn"]
        out[str(group)] = {"positives": positives, "negatives": negatives,  # None, not NaN: model.json stays JSON
                           "sensitivity": c["tp"] / positives if positives else None,
                           "specificity": c["tn"] / negatives if negatives else None}
    return out


def choose_threshold_within_every_group(y_true: np.ndarray, p_positive: np.ndarray, groups: np.ndarray, *,
                                        min_sensitivity: float, group_name: str = "group") -> dict[str, Any]:
    """The highest threshold whose validation sensitivity reaches ``min_sensitivity`` within every group
    (sensitivity only rises as the threshold falls, so the first candidate from the top that passes)."""
    y_true, p_positive = np.asarray(y_true).astype(int), np.asarray(p_positive)
    for threshold in np.unique(p_positive[y_true == 1])[::-1]:
        per_group = sensitivity_by_group(y_true, p_positive, groups, float(threshold))
        if all(g["sensitivity"] >= min_sensitivity for g in per_group.values() if g["positives"]):
            break
    overall = binary_metrics(y_true, p_positive, float(threshold))
    return {"threshold": float(threshold),
            "rule": f"highest threshold with validation sensitivity >= {min_sensitivity} within every {group_name}",
            "val_sensitivity": overall["sensitivity"], "val_specificity": overall["specificity"],
            "val_by_group": per_group}


def bootstrap_auc(y_true: np.ndarray, p_positive: np.ndarray, *, resamples: int = 1000, seed: int = 0) -> dict[str, float]:
    """ROC-AUC with a percentile bootstrap 95% confidence interval (resampling images)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    y_true, p_positive = np.asarray(y_true), np.asarray(p_positive)
    values = []
    for _ in range(resamples):
        rows = rng.integers(0, len(y_true), len(y_true))
        if len(np.unique(y_true[rows])) == 2:
            values.append(roc_auc_score(y_true[rows], p_positive[rows]))
    low, high = np.percentile(values, [2.5, 97.5])
    return {"roc_auc": float(roc_auc_score(y_true, p_positive)), "roc_auc_ci_low": float(low), "roc_auc_ci_high": float(high)}
