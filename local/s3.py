"""A local stand-in for S3: moto's server mode on 127.0.0.1, with the input bucket created.

For tests and ``make serve`` only: no S3-compatible server installs here from the package
registries, and moto implements the calls the functions make (GetObject, presigned PutObject)
closely enough to run the same code paths as on AWS. It checks no IAM policy and no signature, so
the bucket restrictions that matter on AWS are the function's own check and the template's policy.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from .ports import LOOPBACK

LOCAL_INPUT_BUCKET = "oncoserve-input-local"
# moto accepts any credentials; these keep boto3 from looking for real ones.
_FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}


class LocalS3:
    """``start()``: moto on a free loopback port (``ONCOSERVE_S3_PORT`` picks one) with the input bucket;
    ``function_env`` is what a function needs to use it; ``stop()`` ends it."""

    def __init__(self, port: int = 0, bucket: str = LOCAL_INPUT_BUCKET) -> None:
        self.bucket, self._port = bucket, port
        self._server: Any = None

    @property
    def endpoint(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def start(self) -> "LocalS3":
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request on the API's output
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=self._port, verbose=False)
        self._server.start()
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def function_env(self) -> dict[str, str]:
        no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), LOOPBACK, "localhost"]))
        # The emulator does not pass AWS_REGION on to the runtime; Lambda sets both, and a Lambda client needs one.
        return {"ONCOSERVE_INPUT_BUCKET": self.bucket, "AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1",
                "NO_PROXY": no_proxy, "no_proxy": no_proxy, **_FAKE_CREDENTIALS}

    def client(self) -> Any:
        return s3_client(self.endpoint)

    def __enter__(self) -> "LocalS3":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def s3_client(endpoint: str) -> Any:
    """A boto3 S3 client of the local stand-in at ``endpoint`` (e.g. a ``make serve``'s, on ``ONCOSERVE_S3_PORT``)."""
    import boto3
    from botocore.config import Config

    credentials = {name.lower(): value for name, value in _FAKE_CREDENTIALS.items()}  # aws_access_key_id=…
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(proxies={}), **credentials)
