"""Brain DICOM input, measured: ``python -m train.brain.dicom_input`` → ``functions/brain/dicom_input.json``,
which the brain card's "DICOM input" section renders.

1. **Which CT window.** The training CT slices are JPEGs already windowed by whoever exported them.
   Their grey levels say which window that was: where brain parenchyma sits and how far it spreads,
   and whether bone is clipped to white. Each candidate window predicts those from the tissues'
   Hounsfield units (white matter ≈ 25 HU, grey matter ≈ 40 HU, bone ≥ 700 HU); among the windows
   that clip bone, as the JPEGs do, the one whose parenchyma grey level is closest to the JPEGs'
   median tissue grey is the one the runtime applies (the white-to-grey-matter contrast each
   predicts is reported beside the JPEGs' tissue spread).
2. **Round trip.** Every test image (both sources) is sent through the function as its JPEG, as a
   DICOM Secondary Capture (uncompressed and JPEG-compressed), and — CT only — as a CT in Hounsfield
   units written with the chosen window; the share of labels that agree with the JPEG's is reported.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import numpy as np
from PIL import Image

from train import core
from train.imaging import load_manifest

TASK = "brain"
OUT = core.REPO_ROOT / "functions" / TASK / "dicom_input.json"
# Common CT display windows (level, width in HU), from radiology teaching material.
CANDIDATE_WINDOWS = {"brain": (40, 80), "stroke": (40, 40), "subdural": (75, 215), "soft tissue": (40, 400),
                     "bone": (600, 2800)}
PARENCHYMA_HU = (25.0, 40.0)  # white matter, grey matter
BONE_HU = 700.0
TISSUE_GREY = (16, 239)  # grey levels that are neither background nor clipped
SAMPLE = 300


def grey(hu: float, level: float, width: float) -> float:
    return float(np.clip((hu - (level - width / 2.0)) / width, 0.0, 1.0) * 255.0)


def window_screen(seed: int = 0) -> dict[str, Any]:
    """Grey levels of training CT JPEGs against what each candidate window predicts."""
    manifest = load_manifest(TASK)
    rows = manifest[(manifest["modality"] == "ct") & (manifest["split"] == "train")].sample(SAMPLE, random_state=seed)
    medians, spreads, clipped = [], [], []
    for path in rows["path"]:
        pixels = np.asarray(Image.open(core.task_data_dir(TASK) / path).convert("L"), dtype=np.float64)
        tissue = pixels[(pixels >= TISSUE_GREY[0]) & (pixels <= TISSUE_GREY[1])]
        clipped.append(float((pixels >= 250).mean()))
        if tissue.size >= 100:
            medians.append(float(np.median(tissue)))
            spreads.append(float(np.percentile(tissue, 90) - np.percentile(tissue, 10)))
    measured = {"images": SAMPLE, "tissue_median_grey": float(np.median(medians)),
                "tissue_p10_p90_spread": float(np.median(spreads)),
                "share_of_images_with_bone_clipped": float(np.mean(np.array(clipped) >= 0.01))}
    candidates = {}
    for name, (level, width) in CANDIDATE_WINDOWS.items():
        white, grey_matter = (grey(hu, level, width) for hu in PARENCHYMA_HU)
        predicted_median, predicted_spread = (white + grey_matter) / 2.0, grey_matter - white
        candidates[name] = {
            "level": level, "width": width, "parenchyma_grey": round(predicted_median, 1),
            "white_to_grey_matter_levels": round(predicted_spread, 1), "bone_clipped": grey(BONE_HU, level, width) >= 250,
            "distance": round(abs(predicted_median - measured["tissue_median_grey"]), 1),
        }
    best = min(candidates, key=lambda n: (not candidates[n]["bone_clipped"], candidates[n]["distance"]))
    return {"measured": measured, "candidates": candidates, "closest": best}


def round_trip(level: float, width: float) -> dict[str, Any]:
    """Labels through the function: JPEG vs the same slice as DICOM in three encodings."""
    import sys

    sys.path.insert(0, str(core.REPO_ROOT / "tests"))
    from conftest import FakeLambdaContext, load_function_app
    from local.dicom_files import ct_in_hounsfield, secondary_capture
    from local.events import json_event

    app = load_function_app(TASK)
    manifest = load_manifest(TASK)
    test = manifest[manifest["split"] == "test"]

    def label(data: bytes, **extra: Any) -> str:
        body = {"image": base64.b64encode(data).decode("ascii"), **extra}
        response = app.lambda_handler(json_event("/brain/predict", body), FakeLambdaContext())
        answer = json.loads(response["body"])
        return answer.get("label", answer.get("error", {}).get("code", "?"))

    counts: dict[str, list[int]] = {"secondary_capture": [], "secondary_capture_jpeg": [], "ct_hounsfield": []}
    for row in test.itertuples():
        raw = (core.task_data_dir(TASK) / row.path).read_bytes()
        pixels = np.asarray(Image.open(core.task_data_dir(TASK) / row.path).convert("L"))
        modality = "CT" if row.modality == "ct" else "MR"
        reference = label(raw, modality=row.modality)
        counts["secondary_capture"].append(label(secondary_capture(pixels, modality=modality)) == reference)
        counts["secondary_capture_jpeg"].append(label(secondary_capture(pixels, modality=modality, jpeg_quality=95)) == reference)
        if row.modality == "ct":
            counts["ct_hounsfield"].append(label(ct_in_hounsfield(pixels, level=level, width=width)) == reference)
    return {name: {"images": len(agree), "agree": int(sum(agree)), "agreement": round(float(np.mean(agree)), 4)}
            for name, agree in counts.items()}


def main() -> None:
    started = time.time()
    screen = window_screen()
    level, width = CANDIDATE_WINDOWS[screen["closest"]]
    report = {"window_screen": screen, "round_trip": round_trip(level, width),
              "command": "python -m train.brain.dicom_input", "seconds": round(time.time() - started, 1)}
    OUT.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
