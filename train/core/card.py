"""The model card, rendered from model.json and training.json alone, so that no figure is copied by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from train.core.paths import function_dir


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
        if values.get("n") is None and not any(values.get(name) is not None for name in columns):
            continue  # a nested block (e.g. per source): the task's own section shows it
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

{ood_section(task, metadata)}

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


def ood_section(task: str, metadata: dict[str, Any]) -> str:
    """The out-of-distribution guard: method, thresholds and ``ood_evaluation.json``'s figures."""
    ood = metadata.get("ood")
    if not ood:
        return ("## Out-of-distribution guard\nNone yet: this model answers every input it can decode "
                "(no `ood` block in its answers).")
    path = function_dir(task) / "ood_evaluation.json"
    figures = json.loads(path.read_text()) if path.is_file() else None
    lines = ["## Out-of-distribution guard", f"- Score (`{ood['tensor']}`, in the TFLite graph): {ood['method']}; "
             f"fitted on the {ood['fitted_on']}, groups {', '.join(f'`{g}`' for g in ood['groups'])}; "
             f"{ood['graph_parameters']:,} constants in the graph ({4 * ood['graph_parameters'] / 1e6:.2f} MB in "
             f"float32, kept float in an int8 model), each used in one multiply-add per input: "
             f"≈ {2 * ood['graph_parameters'] / 1e6:.2f} MFLOP per input, beside the model's own work.",
             f"- Refused with 422 `out_of_distribution` above {ood['refuse_threshold']:.4g}, answered but "
             f"flagged `atypical` above {ood['atypical_threshold']:.4g} ({ood['threshold_rule']}); "
             "`\"ood\": \"report\"` answers instead, with the flag."]
    if figures is None:
        return "\n".join(lines)
    ind = figures["in_distribution"]
    lines += ["", f"Measured by `python -m train.ood {task}` on the shipped artifact (`ood_evaluation.json`): "
              f"{ind['refused']:.1%} of {ind['n']} in-distribution test inputs refused, {ind['flagged']:.1%} flagged.",
              "", "| family | n | AUROC vs test | refused | refused or atypical | median score |", "|---|---|---|---|---|---|"]
    for name, f in figures["families"].items():
        lines.append(f"| {name} | {f['n']} | {f['auroc']:.4f} | {f['refused']:.1%} | {f['flagged']:.1%} | {f['score_median']:.3g} |")
    for name, f in figures.get("in_distribution_by_source", {}).items():
        lines.append(f"| test, source {name} | {f['n']} | — | {f['refused']:.1%} | {f['flagged']:.1%} | {f['score_median']:.3g} |")
    flags = figures.get("errors_flagged")
    if flags and flags.get("flagged_share_of_errors") is not None:
        lines += ["", f"Does `atypical` catch errors? Of the {flags['errors']} wrong test answers, "
                  f"{flags['flagged_share_of_errors']:.1%} were flagged (refused or atypical), against "
                  f"{flags['flagged_share_of_correct']:.1%} of the correct ones."]
    goals = figures["goals"]
    lines += ["", f"Goals (far families — other tasks, photographs, synthetic: AUROC >= 0.99 and refusal >= 95%; "
              f"<= 1% of test inputs refused): {'met' if goals['met'] else 'not met'} (lowest far AUROC "
              f"{goals['far_auroc_min']:.4f}, lowest far refusal {goals['far_refused_min']:.1%})."]
    if ood.get("region") and figures.get("region_route"):
        lines += ["", region_route_text(ood["region"], figures["region_route"])]
    return "\n".join(lines)


def region_route_text(region: dict[str, Any], figures: dict[str, Any]) -> str:
    """The guard on tiled images: the region thresholds and the far families sent whole to the region route."""
    ind = figures["in_distribution"]
    refuse, atypical = region["refuse_thresholds"], region["atypical_thresholds"]
    own = (f" The tiles' scores here are a second output, `{region['tensor']}`: {region['method']}; "
           f"{region['graph_parameters']:,} more constants in the graph." if region.get("tensor") else "")
    lines = ["### Whole images on the tiled route",
             f"An image sent to a tiled route is also judged as a whole: the median of its tissue tiles' scores, refused "
             f"with 422 `out_of_distribution` above a threshold for that many tiles ({refuse[0]:.4g} for one tile down "
             f"to {refuse[-1]:.4g} for {len(refuse)} or more) and flagged `atypical` above {atypical[0]:.4g} … "
             f"{atypical[-1]:.4g} ({region['threshold_rule']}); the answer carries that `ood` block. "
             f"Test regions (n = {ind['n']}, {ind['slice']}): {ind['refused']:.1%} refused, by their median or because "
             f"every tile of them is (at most "
             f"{max(ind['refused_by_tile_count']):.1%} for any one tile count), {ind['flagged']:.1%} flagged. A region "
             "of real tissue that is mostly fold, ink or blur is refused as a whole, where only its odd tiles were before." + own,
             "", "| family, sent whole | n | no tissue tile | AUROC vs test regions | refused | refused or atypical | median |",
             "|---|---|---|---|---|---|---|"]
    for name, f in figures["families"].items():
        auroc = "—" if f["auroc"] is None else f"{f['auroc']:.4f}"
        median = "—" if f["score_median"] is None else f"{f['score_median']:.3g}"
        lines.append(f"| {name} | {f['n']} | {f['no_tissue']} | {auroc} | {f['refused']:.1%} | {f['flagged']:.1%} | {median} |")
    goals = figures["goals"]
    lowest = "—" if goals["far_auroc_min"] is None else f"{goals['far_auroc_min']:.4f}"
    lines += ["", f"Goals on this route (the same: AUROC >= 0.99, refusal >= 95%, <= 1% of test regions refused): "
              f"{'met' if goals['met'] else 'not met'} (lowest AUROC {lowest}, lowest refusal "
              f"{goals['far_refused_min']:.1%}). An image with no tissue tile at all (blank, all glass) is refused too."]
    return "\n".join(lines)


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
