"""Schemathesis hooks for the contract fuzz (loaded through SCHEMATHESIS_HOOKS).

Generated ``url`` values would make the functions resolve and fetch arbitrary hosts; tests send
traffic to 127.0.0.1 only. Each string URL becomes a loopback one, which the URL guard refuses
(422 ``url_not_allowed``) before any connection: the route's URL handling is still exercised.
"""

from __future__ import annotations

from typing import Any

import schemathesis

LOOPBACK_URL = "http://127.0.0.1:9/fuzzed.png"


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("url"), str):
        return {**body, "url": LOOPBACK_URL}
    return body


# Raw DICOM bodies (the API's binary media type) are sent as the bytes generated for them.
schemathesis.serializer.alias("application/dicom", "application/octet-stream")
