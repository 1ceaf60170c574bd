"""The training pipeline's shared stages, each in its own module, exported here as one namespace.

A task's script reads top to bottom: load its data, train candidates and choose on validation,
``convert_and_choose`` a TFLite variant, set thresholds on the variant's validation outputs,
evaluate through that artifact, then ``model_metadata`` + ``write_model_json`` + ``write_model_card``.
Heavy libraries (Keras, TensorFlow, scikit-learn, matplotlib) are imported inside the functions
that need them, so importing this package is cheap.
"""

from train.core.card import conversion_table, development_history, metrics_table, write_changelog, write_model_card
from train.core.measurements import measurements
from train.core.metrics import (auc_by_group, balanced_class_weight, binary_metrics, bootstrap_auc,
                                confusion_counts, mean_accuracy_by_group, mean_auc_by_group)
from train.core import ood
from train.core.paths import (BUILD_DIR, FUNCTIONS_DIR, REPO_ROOT, build_dir, data_root, export_saved_model,
                              function_dir, task_data_dir)
from train.core.plots import confusion_grid, plot_confusion, plot_history, plot_roc_pr, plots_dir, pyplot
from train.core.record import (EXACT_KEYS, TRAINING_RECORD_SCHEMA, model_json_path, read_model_json, rounded,
                               training_record_path, update_training_record, write_model_json)
from train.core.release import Release, model_metadata, parse_shipped_args, release_file
from train.core.reproducibility import library_versions, seed_everything
from train.core.thresholds import choose_threshold, choose_threshold_within_every_group, sensitivity_by_group
from train.core.variants import (ShippedVariant, artifact_entry, convert_and_choose, convert_float32, only_output,
                                 tflite_outputs, write_artifact)

__all__ = [
    "BUILD_DIR", "EXACT_KEYS", "FUNCTIONS_DIR", "REPO_ROOT", "TRAINING_RECORD_SCHEMA", "Release",
    "ShippedVariant", "artifact_entry", "auc_by_group", "balanced_class_weight", "binary_metrics",
    "bootstrap_auc", "build_dir", "choose_threshold", "choose_threshold_within_every_group",
    "confusion_counts", "confusion_grid", "conversion_table", "convert_and_choose", "convert_float32",
    "data_root", "development_history", "export_saved_model", "function_dir", "library_versions",
    "mean_accuracy_by_group", "mean_auc_by_group", "measurements", "metrics_table", "model_json_path", "model_metadata",
    "only_output", "ood",
    "parse_shipped_args", "plot_confusion", "plot_history", "plot_roc_pr", "plots_dir", "pyplot",
    "read_model_json", "release_file", "rounded", "seed_everything", "sensitivity_by_group", "task_data_dir",
    "tflite_outputs", "training_record_path", "update_training_record", "write_artifact", "write_changelog",
    "write_model_card", "write_model_json",
]
