"""The local API's documentation: ``/openapi.json`` (the committed ``openapi.yaml``, its first server
this API) and ``/docs``, Swagger UI from the copy the ``swagger-ui-py`` wheel ships (nothing is
fetched at run time). Documentation, not an API route: served without the key, as FastAPI and
BentoML serve theirs; the deployed API does not serve it (see the README)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from contract import OPENAPI_FILE

_ASSETS = {"swagger-ui-bundle.js": "application/javascript", "swagger-ui.css": "text/css",
           "favicon-32x32.png": "image/png"}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>OncoServe API</title>
<link rel="icon" href="/docs/favicon-32x32.png"><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div><script src="/docs/swagger-ui-bundle.js"></script>
<script>
  // validatorUrl null: Swagger UI would otherwise send the document to validator.swagger.io.
  window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null,
                               docExpansion: "list", defaultModelsExpandDepth: 0});
</script></body></html>
"""


def _swagger_ui_static() -> Path:
    import swagger_ui  # the swagger-ui-py wheel: Swagger UI 5 (OpenAPI 3.1) as static files

    return Path(swagger_ui.__file__).parent / "static"


class DocsSite:
    """``answer(path)`` → (content type, bytes) for the documentation paths, else ``None``."""

    PATHS = ("/docs", "/openapi.json")

    def __init__(self, base_url: str, openapi_file: Path = OPENAPI_FILE) -> None:
        document = yaml.safe_load(openapi_file.read_text())
        document["servers"] = [{"url": base_url, "description": "This local API"},
                               *[s for s in document["servers"] if not s["url"].startswith("http://127.0.0.1")]]
        self._openapi = json.dumps(document).encode()
        self._static = _swagger_ui_static()

    def answer(self, path: str) -> tuple[str, bytes] | None:
        if path in ("/docs", "/docs/"):
            return "text/html; charset=utf-8", _PAGE.encode()
        if path == "/openapi.json":
            return "application/json", self._openapi
        name = path.removeprefix("/docs/")
        if path.startswith("/docs/") and name in _ASSETS:
            return _ASSETS[name], (self._static / name).read_bytes()
        return None
