"""Transfer learning with a selectable ImageNet backbone, shared by the brain, skin and histopathology tasks.

Frozen-feature training runs on a CPU: the backbone turns every image into its last convolutional
feature map once (``features``, cached), and small *linear* heads are trained on the pooled
features (``heads``). Linear heads keep class-activation maps exact and gradient-free (``cam``).
Last-stage fine-tuning (``last_stage``) also runs on a CPU; whole-backbone fine-tuning
(``whole_backbone``, driven by ``python -m train.finetune``) is meant for a lent GPU. Each module
has one concern; this package exports them as one namespace.
"""

from train.imaging.augmentation import (anatomy_augmentation, augmentation_text, dermoscopy_augmentation,
                                        grey_intensity_layer, hed_jitter_layer, tissue_augmentation)
from train.imaging.backbones import (BACKBONES, DEFAULT_WEIGHTS, BackboneSpec, backbone_constructor, backbone_of,
                                     build_feature_extractor, cache_tag, concatenated_extractor, resolve_weights,
                                     guard_maps, split_extractor, tap_only, tapped_extractor)
from train.imaging.cam import (SQUARE_SYMMETRIES, apply_symmetry, average_symmetric_views, build_cam_model,
                               plot_cam_examples, stack_symmetric_views)
from train.imaging.datasets import load_images, load_manifest
from train.imaging.features import (cached_in_chunks, cached_maps, feature_maps, guard_training_features, pooled_features,
                                    pooled_outputs)
from train.imaging.heads import head_probabilities, select_linear_head, train_linear_head
from train.imaging.last_stage import (MIRRORED, MIRRORED_AND_FLIPPED, TunedFeatures, fine_tune_last_stage,
                                      fine_tune_top, set_trainable_except_batch_norm)
from train.imaging.tuning_record import (SUMMARY_FILE, WEIGHTS_FILE, backbone_tuning_text, file_sha256,
                                         fine_tuning_text, recorded_fine_tuning, tuning_device, tuning_runs_table)
from train.imaging.whole_backbone import TuningModel, TuningSpec, TuningState, fine_tune_whole_backbone

__all__ = [
    "BACKBONES", "DEFAULT_WEIGHTS", "MIRRORED", "MIRRORED_AND_FLIPPED", "SQUARE_SYMMETRIES", "SUMMARY_FILE",
    "WEIGHTS_FILE", "BackboneSpec", "TunedFeatures", "TuningModel", "TuningSpec", "TuningState",
    "anatomy_augmentation", "apply_symmetry", "augmentation_text", "average_symmetric_views",
    "backbone_constructor", "backbone_of", "backbone_tuning_text", "build_cam_model",
    "build_feature_extractor", "cache_tag", "cached_in_chunks", "cached_maps", "concatenated_extractor",
    "dermoscopy_augmentation", "feature_maps", "file_sha256", "fine_tune_last_stage", "fine_tune_top",
    "fine_tune_whole_backbone", "fine_tuning_text", "grey_intensity_layer", "guard_maps", "guard_training_features", "head_probabilities", "hed_jitter_layer",
    "load_images", "load_manifest",
    "plot_cam_examples", "pooled_features", "pooled_outputs", "recorded_fine_tuning", "resolve_weights",
    "select_linear_head", "set_trainable_except_batch_norm", "split_extractor", "stack_symmetric_views",
    "tap_only", "tapped_extractor", "tissue_augmentation", "train_linear_head", "tuning_device", "tuning_runs_table",
]
