"""The API contract: ``openapi.yaml``, generated from the routes the functions serve."""

from pathlib import Path

OPENAPI_FILE = Path(__file__).resolve().parents[1] / "openapi.yaml"
