"""Shared fixtures.

S3 (``s3_endpoint``, ``s3``, ``s3_bucket``): a real S3 endpoint, moto's HTTP
server on a free loopback port, started once per test session. Tests talk to
it over HTTP exactly as the toolkit talks to S3 (no in-process mocking), and
subprocesses (``train``, ``sagemaker-training local``) can reach it too
through ``AWS_ENDPOINT_URL_S3``.
"""

from __future__ import annotations

import itertools
import os

import pytest

S3_TEST_REGION = "us-east-1"
S3_TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing-access-key", "AWS_SECRET_ACCESS_KEY": "testing-secret-key"}
_s3_bucket_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def s3_endpoint():
    """URL (``http://127.0.0.1:PORT``) of moto's S3 server for this session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch):
    """A boto3 S3 client of the session's endpoint; this process's AWS
    variables point at the endpoint too (fake credentials, us-east-1)."""
    import boto3

    for name in ("AWS_ENDPOINT_URL", "S3_ENDPOINT_URL", "AWS_REGION", "AWS_PROFILE", "AWS_SESSION_TOKEN",
                 "AWS_SECURITY_TOKEN", "SAGEMAKER_S3_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", S3_TEST_REGION)
    for name, value in S3_TEST_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    return boto3.session.Session().client(
        "s3", endpoint_url=s3_endpoint, region_name=S3_TEST_REGION,
        aws_access_key_id=S3_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def s3_bucket(s3):
    """``s3_bucket()`` creates a fresh, empty bucket (a name no other test
    uses) on the session's endpoint and returns its name."""

    def make(label: str = "test") -> str:
        name = f"{label}-{os.getpid()}-{next(_s3_bucket_numbers)}".lower()
        s3.create_bucket(Bucket=name)
        return name

    return make
