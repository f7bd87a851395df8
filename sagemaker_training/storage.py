"""Where code and artifacts live: S3 (boto3, imported only here, lazily),
``file://`` URIs and local paths.

The S3 endpoint comes from ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL`` or
``S3_ENDPOINT_URL`` (in that order); calls retry with backoff on throttling,
5xx answers and dropped connections (``SAGEMAKER_S3_MAX_ATTEMPTS``, default 8).
"""

from __future__ import annotations

import os
import shutil
import tempfile

from .errors import ClientError, PlatformError

ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL")


def endpoint_url(environ=None) -> str | None:
    environ = os.environ if environ is None else environ
    return next((environ[name] for name in ENDPOINT_VARIABLES if environ.get(name)), None)


def s3_client(region: str | None = None, environ=None):
    import boto3  # noqa: PLC0415 - only jobs that touch S3 pay for boto3
    from botocore.config import Config  # noqa: PLC0415

    environ = os.environ if environ is None else environ
    region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    endpoint = endpoint_url(environ)
    try:
        attempts = int(environ.get("SAGEMAKER_S3_MAX_ATTEMPTS", "8"))
    except ValueError:
        attempts = 8
    config = Config(
        retries={"mode": "standard", "max_attempts": attempts},
        s3={"addressing_style": "path"} if endpoint else {},
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.client("s3", region_name=region, endpoint_url=endpoint, config=config)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ClientError(f"{uri!r} is not an S3 URI (s3://bucket/key).")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ClientError(f"{uri!r} has no bucket name (s3://bucket/key).")
    return bucket, key


def _translate(exc: Exception, uri: str, what: str = "") -> Exception:
    """A boto3/botocore error as one of ours, naming the URI but no secret."""
    from botocore.exceptions import BotoCoreError, ClientError as BotoClientError  # noqa: PLC0415

    context = f" ({what})" if what else ""
    if isinstance(exc, BotoClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound") or status == 404:
            return ClientError(f"{uri} does not exist{context}: check the URI and that the upload finished.")
        if code in ("AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch") \
                or status == 403:
            return ClientError(f"access to {uri} was denied{context} ({code}): give the job's role "
                               "(or these credentials) permission on that bucket and prefix.")
        return PlatformError(f"S3 answered {code or status} for {uri}{context}.")
    if isinstance(exc, BotoCoreError):
        where = endpoint_url() or "the default AWS endpoint"
        return PlatformError(f"S3 could not be reached at {where} for {uri}{context}: {type(exc).__name__}.")
    return exc


def _call(uri: str, what: str, fn, *args, **kwargs):
    from botocore.exceptions import BotoCoreError, ClientError as BotoClientError  # noqa: PLC0415

    try:
        return fn(*args, **kwargs)
    except (BotoCoreError, BotoClientError) as exc:
        raise _translate(exc, uri, what) from None


def download_file(uri: str, path: str, region: str | None = None, what: str = "") -> str:
    bucket, key = parse_s3_uri(uri)
    client = s3_client(region)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    _call(uri, what, client.head_object, Bucket=bucket, Key=key)
    _call(uri, what, client.download_file, bucket, key, path)
    return path


def upload_file(path: str, uri: str, region: str | None = None, what: str = "") -> str:
    bucket, key = parse_s3_uri(uri)
    _call(uri, what, s3_client(region).upload_file, path, bucket, key)
    return uri


def list_prefix(uri: str, region: str | None = None, what: str = "") -> list[str]:
    bucket, prefix = parse_s3_uri(uri)
    client = s3_client(region)
    keys = []
    for page in _call(uri, what, lambda: list(client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix))):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def download_prefix(uri: str, local_dir: str, region: str | None = None, what: str = "") -> list[str]:
    """Every object under ``uri`` into ``local_dir``, keeping the layout below the prefix."""
    bucket, prefix = parse_s3_uri(uri)
    client = s3_client(region)
    root = os.path.abspath(local_dir)
    written = []
    base = prefix if prefix.endswith("/") or not prefix else prefix + "/"
    for key in list_prefix(uri, region, what):
        if key.endswith("/"):
            continue
        relative = key[len(base):] if key.startswith(base) else os.path.basename(key)
        target = os.path.abspath(os.path.join(root, relative))
        if not target.startswith(root + os.sep):
            raise ClientError(f"s3://{bucket}/{key} would be written outside {local_dir}: rename the object.")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        _call(f"s3://{bucket}/{key}", what, client.download_file, bucket, key, target)
        written.append(target)
    return written


def upload_directory(local_dir: str, uri: str, region: str | None = None, what: str = "") -> list[str]:
    bucket, prefix = parse_s3_uri(uri)
    client = s3_client(region)
    prefix = prefix.rstrip("/")
    uploaded = []
    for dirpath, _, filenames in os.walk(local_dir):
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            key = "/".join(p for p in (prefix, os.path.relpath(path, local_dir).replace(os.sep, "/")) if p)
            _call(f"s3://{bucket}/{key}", what, client.upload_file, path, bucket, key)
            uploaded.append(f"s3://{bucket}/{key}")
    return uploaded


def _is_archive(path: str) -> bool:
    return path.endswith((".tar.gz", ".tgz", ".tar")) or os.path.isfile(path)


def fetch_submit_dir(uri: str, code_dir: str, region: str | None = None) -> None:
    """Put the user's code (sagemaker_submit_directory) into ``code_dir``."""
    from . import archives  # noqa: PLC0415

    what = "sagemaker_submit_directory"
    if uri.startswith("s3://"):
        parent = os.path.dirname(os.path.abspath(code_dir))
        os.makedirs(parent, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".sourcedir-", dir=parent) as tmp:
            local = download_file(uri, os.path.join(tmp, "sourcedir.tar.gz"), region, what)
            archives.extract_tarball(local, code_dir)
        return
    path = uri[len("file://"):] if uri.startswith("file://") else uri
    if not os.path.exists(path):
        raise ClientError(f"{what} {uri} does not exist: give an s3:// URI, a file:// URI, "
                          "a local .tar.gz or a local directory.")
    if os.path.isdir(path):
        if os.path.abspath(path) == os.path.abspath(code_dir):
            return
        parent = os.path.dirname(os.path.abspath(code_dir))
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".code-", dir=parent)
        try:
            shutil.copytree(path, staging, symlinks=True, dirs_exist_ok=True)
            if os.path.lexists(code_dir):
                shutil.rmtree(code_dir)
            os.rename(staging, code_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return
    archives.extract_tarball(path, code_dir)
