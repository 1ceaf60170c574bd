"""What the load test and the local API's concurrency test send: one valid request body per route,
taken from the events ``make setup`` writes from ../shared/data (``events/generated/``)."""

from __future__ import annotations

from local.events import EVENTS_DIR

SAMPLE_BODIES = {
    "/histopathology/predict": "histopathology/ok_idc_patch.body.json",
    "/histopathology/region": "histopathology/ok_region_stitched.body.json",  # 488 kB, ~0.5 Mpx
    "/brain/predict": "brain/ok_ct_tumor.body.json",
    "/skin/predict": "skin/ok_ham_melanoma.body.json",
    "/leukemia/predict": "leukemia/ok_aml.body.json",
    "/breast-survival/predict": "breast_survival/ok_patient.body.json",
}


def sample_bodies() -> dict[str, bytes]:
    """route → body; raises FileNotFoundError (run ``make setup``) when the events are not written."""
    return {route: (EVENTS_DIR / "generated" / relative).read_bytes() for route, relative in SAMPLE_BODIES.items()}
