"""The serving contract: ``model.json`` as typed, frozen objects, read strictly at cold start.

``model.json`` holds only what serving needs and what a caller is told (artifact, input,
preprocessing, outputs and thresholds, test metrics, data licence, intended use); the training
record lives beside it in ``training.json`` and never reaches a function. Each function declares
its output block (a dataclass) and its input kind; :func:`contract_type` builds the whole
document's type from them, which the runtime reads with :func:`typed_json.from_json` and
``python -m contract`` writes out as ``functions/model.schema.json``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

CONTRACT_SCHEMA = "oncoserve.model/v2"
MAX_ARTIFACT_BYTES = 25 * 1024 * 1024


def constrained(**schema: Any) -> Any:
    """A field whose written JSON Schema carries extra constraints (pattern, bounds)."""
    return field(metadata={"schema": schema})


@dataclass(frozen=True, kw_only=True)
class Artifact:
    """The TFLite file beside model.json; its sha256 is checked before it is served."""

    file: str = constrained(pattern=r"^[^/]+\.tflite$")
    sha256: str = constrained(pattern="^[0-9a-f]{64}$")
    bytes: int = constrained(minimum=1, maximum=MAX_ARTIFACT_BYTES)
    variant: Literal["float32", "float16", "int8"]
    max_abs_diff_vs_keras: float


@dataclass(frozen=True, kw_only=True)
class ImageInput:
    kind: Literal["image"]
    dtype: Literal["float32"]
    shape: tuple[int | None, ...]
    value_range: tuple[float, ...]
    channels: tuple[str, ...]
    patch_size: int | None = None


@dataclass(frozen=True, kw_only=True)
class ImageSteps:
    """How the runtime turns a decoded image into the model's input (``preprocessing.py``)."""

    library: Literal["keras-image-helper"]
    resize: tuple[int, ...] = constrained(minItems=2, maxItems=2)
    resize_filter: Literal["nearest"]
    scaling: Literal["none", "unit", "tf"]
    color: str


@dataclass(frozen=True, kw_only=True)
class ImagePreprocessing:
    in_graph: tuple[str, ...]
    in_runtime: ImageSteps


@dataclass(frozen=True, kw_only=True)
class MissingValues:
    """How many of the model's genes a profile must name, and what stands in for the rest."""

    min_coverage: float = constrained(minimum=0, maximum=1)
    rule: str
    fill_values: tuple[float, ...] | None = None


@dataclass(frozen=True, kw_only=True)
class ClinicalField:
    """One clinical value the graph takes after the genes (status: Positive = 1, Negative = 0)."""

    name: str
    kind: Literal["number", "integer", "status"]
    unit: str
    minimum: float
    maximum: float
    fill_value: float


@dataclass(frozen=True, kw_only=True)
class ClinicalInput:
    """Clinical values appended to the expression profile, and how many unknown ones are imputed."""

    fields: tuple[ClinicalField, ...]
    max_imputed: int = constrained(minimum=0)
    rule: str


@dataclass(frozen=True, kw_only=True)
class ExpressionInput:
    kind: Literal["expression"]
    dtype: Literal["float32"]
    shape: tuple[int | None, ...]
    value_range: str
    feature_id: str
    features: tuple[str, ...] = constrained(uniqueItems=True)
    missing: MissingValues
    clinical: ClinicalInput | None = None


@dataclass(frozen=True, kw_only=True)
class ExpressionSteps:
    order: str
    case_insensitive: bool = False


@dataclass(frozen=True, kw_only=True)
class ExpressionPreprocessing:
    in_graph: tuple[str, ...]
    in_runtime: ExpressionSteps


@dataclass(frozen=True, kw_only=True)
class DataFacts:
    source: str
    citation: str
    license: str
    splits: dict[str, Any]
    version: dict[str, Any] | None = None
    sources: tuple[str, ...] | None = None  # the manifest's source_dataset values trained and reported on


@dataclass(frozen=True, kw_only=True)
class BinaryOutput:
    """A positive label chosen at a threshold on its probability (tasks extend it)."""

    labels: tuple[str, ...]
    positive_label: str
    threshold: float = constrained(minimum=0, maximum=1)
    threshold_rule: str | None = None
    rule: str | None = None
    tensor: str | None = None


@dataclass(frozen=True, kw_only=True)
class RegionGuard:
    """A tiled image judged as a whole: the median of its tissue tiles' scores against thresholds set on
    validation regions (a patient's spatially nearest tissue patches), one pair per tissue-tile count
    (a median of few tiles varies more; the last pair holds for larger images). One odd tile is that
    tile's business; a typical tile of the image being odd is not this kind of image."""

    statistic: Literal["median tile score"]
    # The score output the median is taken of, when not the guard's own (histopathology: the tiles are each
    # judged by their nearest training patch, the image by a density, which keeps a whole photo apart).
    tensor: str | None = None
    method: str | None = None
    graph_parameters: int | None = None
    refuse_thresholds: tuple[float, ...] = constrained(minItems=1)  # [n - 1]: for n tissue tiles
    atypical_thresholds: tuple[float, ...] = constrained(minItems=1)
    threshold_rule: str


@dataclass(frozen=True, kw_only=True)
class OodGuard:
    """The in-distribution check: the graph's score output and two thresholds set on validation."""

    tensor: str
    refuse_threshold: float
    atypical_threshold: float
    threshold_rule: str
    method: str
    groups: tuple[str, ...]
    fitted_on: str
    graph_parameters: int = constrained(minimum=0)
    region: RegionGuard | None = None  # tiled routes (histopathology's region)


INPUT_KINDS: dict[str, tuple[type, type]] = {
    "image": (ImageInput, ImagePreprocessing),
    "expression": (ExpressionInput, ExpressionPreprocessing),
}


@dataclass(frozen=True, kw_only=True)
class _Contract:
    """The fields every model.json has; :func:`contract_type` adds input, preprocessing, output."""

    schema: Literal["oncoserve.model/v2"]
    name: str = constrained(pattern="^[a-z0-9][a-z0-9-]*$")
    task: str
    version: str = constrained(pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    created: str
    artifact: Artifact
    metrics: dict[str, dict[str, Any]]
    data: DataFacts
    intended_use: str
    out_of_scope: str
    limitations: str
    versions: dict[str, str]
    ood: OodGuard | None = None


def contract_type(task: str, input_kind: str, output: type) -> type:
    """The dataclass of ``task``'s whole model.json (``input_kind``: ``image`` or ``expression``)."""
    input_type, preprocessing_type = INPUT_KINDS[input_kind]
    return dataclasses.make_dataclass(
        f"{''.join(part.title() for part in task.split('_'))}Contract",
        [("task", Literal[task]), ("input", input_type), ("preprocessing", preprocessing_type), ("output", output)],
        bases=(_Contract,), frozen=True, kw_only=True)


CONTRACT_KEYS = frozenset(f.name for f in dataclasses.fields(_Contract)) | {"input", "preprocessing", "output"}
