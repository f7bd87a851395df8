"""The embedded S3 endpoint of ``sagemaker-training local --embedded-s3``.

moto's S3 server on 127.0.0.1 (a free port) while the job lives. It changes
nothing in this process: :attr:`EmbeddedS3.environ` is the set of variables
that reach it (endpoint, throw-away credentials, region; ``None`` for the
ones that would point boto3 elsewhere), and whoever needs S3 is handed it
explicitly — local mode's own client (``storage.s3_client(environ=...)``)
and every host's environment. Its objects live in memory: copy out what
you want to keep (``--download-artifacts``) before it stops.
"""

from __future__ import annotations

import logging
import os

ACCESS_KEY = "local-mode"
SECRET_KEY = "local-mode-secret"
_ELSEWHERE = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL")


class EmbeddedS3Unavailable(Exception):
    """moto's server is not installed."""


class EmbeddedS3:
    """``with EmbeddedS3(region) as s3:`` — ``s3.endpoint``, ``s3.environ``."""

    def __init__(self, region: str):
        self.region = region
        self.server = None
        self.endpoint: str | None = None

    @property
    def environ(self) -> dict:
        """The variables (name -> value, or None: unset) that point an S3 client here."""
        if self.endpoint is None:
            raise RuntimeError("the embedded S3 endpoint is not running")
        variables = {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        variables.update(dict.fromkeys(_ELSEWHERE))
        return variables

    def __enter__(self):
        try:
            from moto.server import ThreadedMotoServer  # noqa: PLC0415
        except ImportError:
            raise EmbeddedS3Unavailable("--embedded-s3 needs moto's server: pip install "
                                        "'sagemaker_training[local]' (or 'moto[server]').") from None
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc):
        if self.server is not None:
            self.server.stop()
            self.server = None
        return False


def overlay(variables: dict | None, environ=None) -> dict:
    """``environ`` (default: os.environ) with ``variables`` applied (None unsets)."""
    result = dict(os.environ if environ is None else environ)
    for name, value in (variables or {}).items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result
