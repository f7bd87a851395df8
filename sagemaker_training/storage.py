"""Where the user's code and the job's artifacts live: S3, ``file://``, local paths.

boto3 is imported only inside the functions that talk to S3, so a job whose
code is already local never pays for it.

The S3 client is built from the environment at call time:

* endpoint: ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``, else
  ``S3_ENDPOINT_URL`` (a custom endpoint also gets path-style addressing, as
  local S3 servers expect);
* region: the argument (``sagemaker_region``), else ``AWS_REGION``, else
  ``AWS_DEFAULT_REGION``, else ``us-east-1``;
* retries: botocore's ``standard`` mode, ``SAGEMAKER_S3_MAX_ATTEMPTS``
  attempts in all (default 8), with exponential backoff and jitter, on
  throttling, 5xx answers, timeouts and dropped connections.

Failures become one-line errors: a missing bucket or key, or a refused
permission, is a ``ClientError`` naming the URI (the job's input is wrong);
an endpoint that cannot be reached or keeps failing after the retries is a
``PlatformError`` naming the endpoint. Credentials never appear in either.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.parse

from .errors import ClientError, PlatformError, Redactor

ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL")
MAX_ATTEMPTS_ENV = "SAGEMAKER_S3_MAX_ATTEMPTS"
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_REGION = "us-east-1"
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60

_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_DENIED_CODES = {"403", "AccessDenied", "Forbidden", "AllAccessDisabled", "InvalidAccessKeyId",
                 "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "AccountProblem"}
_REGION_CODES = {"301", "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}


# --------------------------------------------------------------------------
# Configuration


def endpoint_url(environ=None) -> str | None:
    """The S3 endpoint the environment names, or None for AWS's own."""
    environ = os.environ if environ is None else environ
    for name in ENDPOINT_VARIABLES:
        value = (environ.get(name) or "").strip()
        if value:
            return value
    return None


def region_name(region: str | None = None, environ=None) -> str:
    environ = os.environ if environ is None else environ
    return region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def max_attempts(environ=None) -> int:
    environ = os.environ if environ is None else environ
    raw = (environ.get(MAX_ATTEMPTS_ENV) or "").strip()
    if not raw:
        return DEFAULT_MAX_ATTEMPTS
    try:
        value = int(raw)
    except ValueError:
        raise ClientError(f"{MAX_ATTEMPTS_ENV}={raw!r} is not a whole number: set it to e.g. 8.") from None
    if value < 1:
        raise ClientError(f"{MAX_ATTEMPTS_ENV}={raw!r} must be at least 1.")
    return value


def s3_client(region: str | None = None, environ=None, *, attempts: int | None = None):
    """A boto3 S3 client configured from ``environ`` (default: os.environ)."""
    import boto3.session  # noqa: PLC0415 - only jobs that touch S3 pay for boto3
    from botocore.config import Config  # noqa: PLC0415

    environ = os.environ if environ is None else environ
    endpoint = endpoint_url(environ)
    options = {
        # total_max_attempts counts the first try too (botocore's max_attempts counts only retries)
        "retries": {"mode": "standard", "total_max_attempts": attempts or max_attempts(environ)},
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
    }
    if endpoint:
        options["s3"] = {"addressing_style": "path"}
    # A session per client: creating clients from boto3's shared default
    # session is not thread-safe.
    session = boto3.session.Session()
    return session.client("s3", region_name=region_name(region, environ), endpoint_url=endpoint,
                          config=Config(**options))


def parse_s3_uri(uri) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` as (bucket, key); the key may be empty."""
    if not isinstance(uri, str) or not uri[:5].lower() == "s3://":
        raise ClientError(f"{uri!r} is not an S3 URI: write it as s3://bucket/key.")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ClientError(f"{uri!r} has no bucket name: write it as s3://bucket/key.")
    if not all(c.isalnum() or c in ".-_" for c in bucket) or not bucket.isascii() or len(bucket) > 255:
        raise ClientError(f"{uri!r} has an invalid bucket name {bucket!r}: S3 bucket names use a-z, 0-9, '.' and '-'.")
    return bucket, key


def _object_key(uri: str) -> tuple[str, str]:
    bucket, key = parse_s3_uri(uri)
    if not key or key.endswith("/"):
        raise ClientError(f"{uri} names no object (it ends in '/'): give the full key, e.g. s3://{bucket}/path/file.")
    return bucket, key


def _prefix_dir(prefix: str) -> str:
    """A key prefix used as a directory: '' or ending in '/'."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


# --------------------------------------------------------------------------
# Errors


def _show_endpoint(client) -> str:
    url = getattr(getattr(client, "meta", None), "endpoint_url", None) or "the AWS S3 endpoint"
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password:  # never show credentials embedded in a URL
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))
    return url


def _bucket_exists(client, bucket: str) -> bool | None:
    """True/False when S3 says so; None when it cannot tell."""
    from botocore.exceptions import BotoCoreError, ClientError as BotoClientError  # noqa: PLC0415

    try:
        client.head_bucket(Bucket=bucket)
        return True
    except BotoClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return False if code in _NOT_FOUND_CODES else None
    except BotoCoreError:
        return None


def _after(client) -> str:
    retries = getattr(getattr(getattr(client, "meta", None), "config", None), "retries", None) or {}
    attempts = retries.get("total_max_attempts")
    return f"after {attempts} attempts ({MAX_ATTEMPTS_ENV})" if attempts else "after the retries"


def _translate(exc: BaseException, client, uri: str, what: str | None):
    """A boto3/botocore exception as a ClientError or PlatformError, or None."""
    from boto3.exceptions import RetriesExceededError, S3UploadFailedError  # noqa: PLC0415
    from botocore.exceptions import (  # noqa: PLC0415
        BotoCoreError, ClientError as BotoClientError, NoCredentialsError, ParamValidationError,
        PartialCredentialsError)

    check = f"check {what}" if what else "check the URI"
    endpoint = _show_endpoint(client)
    redact = Redactor()
    if isinstance(exc, S3UploadFailedError) and isinstance(exc.__context__, BotoClientError):
        exc = exc.__context__
    if isinstance(exc, RetriesExceededError) and exc.last_exception is not None:
        exc = exc.last_exception
    if isinstance(exc, BotoClientError):
        error = exc.response.get("Error", {}) or {}
        code = str(error.get("Code") or "")
        status = (exc.response.get("ResponseMetadata", {}) or {}).get("HTTPStatusCode")
        bucket = parse_s3_uri(uri)[0]
        if code in _NOT_FOUND_CODES or status == 404:
            if code == "NoSuchBucket" or (code != "NoSuchKey" and _bucket_exists(client, bucket) is False):
                return ClientError(f"{uri} does not exist: there is no bucket {bucket!r}; {check}.")
            return ClientError(f"{uri} does not exist: {check}.")
        if code in _DENIED_CODES or status == 403:
            return ClientError(
                f"access to {uri} was denied ({code or status}): the job's role or credentials lack permission "
                f"on it; grant s3:GetObject/s3:PutObject/s3:ListBucket there or {check}."
            )
        if code in _REGION_CODES or status == 301:
            return ClientError(
                f"{uri} is in another region than the client's ({code or status}): set sagemaker_region "
                "(or AWS_REGION) to the bucket's region."
            )
        if status is not None and status < 500 and code not in ("SlowDown", "Throttling", "RequestTimeout"):
            return ClientError(f"S3 refused the request for {uri} ({code or status}: "
                               f"{redact(str(error.get('Message') or ''))}): {check}.")
        answer = f"HTTP {status}" if status else "no HTTP status"
        if code and code != str(status):
            answer = f"{answer} {code}"
        return PlatformError(f"S3 at {endpoint} kept failing for {uri} ({answer}) {_after(client)}.")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return PlatformError(f"no AWS credentials were found for {uri}: the container needs the job's role "
                             "credentials (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).")
    if isinstance(exc, ParamValidationError):
        return ClientError(f"{uri} cannot be used with S3: {redact(' '.join(str(exc).split()))}.")
    if isinstance(exc, (BotoCoreError, RetriesExceededError)):
        detail = redact(" ".join(str(exc).split()))[:200].rstrip(".")
        return PlatformError(
            f"S3 at {endpoint} could not be reached for {uri} {_after(client)}: {type(exc).__name__}: {detail}."
        )
    return None


class _s3_errors:  # noqa: N801 - used as a context manager, like contextlib's helpers
    """``with _s3_errors(client, uri, what):`` boto3 errors raised inside become ours."""

    def __init__(self, client, uri, what):
        self.client, self.uri, self.what = client, uri, what

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            return False
        mapped = _translate(exc, self.client, self.uri, self.what)
        if mapped is None:
            return False
        raise mapped from None


# --------------------------------------------------------------------------
# Files and prefixes


def download_file(uri: str, path: str, region: str | None = None, *, what: str | None = None,
                  client=None) -> str:
    """The object at ``uri`` into ``path`` (which appears only when complete)."""
    bucket, key = _object_key(uri)
    client = client or s3_client(region)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _s3_errors(client, uri, what):
        client.download_file(bucket, key, path)  # s3transfer writes a temporary file, then renames it
    return path


def upload_file(path: str, uri: str, region: str | None = None, *, what: str | None = None, client=None) -> str:
    """``path`` to ``uri``; a URI ending in '/' gets the file's name. Returns the object's URI."""
    if not os.path.isfile(path):
        raise ClientError(f"cannot upload {path}: it does not exist or is not a file.")
    bucket, key = parse_s3_uri(uri)
    if not key or key.endswith("/"):
        key = f"{key}{os.path.basename(path)}"
        uri = f"s3://{bucket}/{key}"
    client = client or s3_client(region)
    with _s3_errors(client, uri, what):
        client.upload_file(path, bucket, key)
    return uri


def list_prefix(uri: str, region: str | None = None, *, what: str | None = None, client=None) -> list[str]:
    """Every key that starts with the URI's key (S3's own prefix sense), in S3's order."""
    bucket, prefix = parse_s3_uri(uri)
    client = client or s3_client(region)
    keys: list[str] = []
    with _s3_errors(client, uri, what):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def _relative_parts(bucket: str, key: str, prefix: str, local_dir: str) -> list[str] | None:
    parts = [part for part in key[len(prefix):].split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ClientError(f"refusing to download s3://{bucket}/{key}: its key would be written outside "
                          f"{local_dir}; rename the object.")
    return parts or None


def download_prefix(uri: str, local_dir: str, region: str | None = None, *, what: str | None = None,
                    client=None) -> list[str]:
    """Every object under ``uri`` (taken as a folder: ``s3://b/ckpt`` means the
    keys under ``ckpt/``) into ``local_dir``, keeping the layout below it.

    Keys are all checked before anything is written; a key that would leave
    ``local_dir`` (a ``..`` component) is refused. Folder markers (keys
    ending in '/') are skipped. Returns the local paths written, in key order.
    """
    bucket, prefix = parse_s3_uri(uri)
    prefix = _prefix_dir(prefix)
    client = client or s3_client(region)
    root = os.path.abspath(local_dir)
    plan = []
    for key in list_prefix(f"s3://{bucket}/{prefix}", region, what=what, client=client):
        parts = _relative_parts(bucket, key, prefix, local_dir)
        if parts is not None and not key.endswith("/"):
            plan.append((key, os.path.join(root, *parts)))
    written = []
    for key, target in plan:
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        except OSError as exc:
            raise ClientError(f"cannot download s3://{bucket}/{key} to {target}: {exc.strerror}; "
                              "another object's key uses that path as a file.") from None
        if os.path.isdir(target):
            raise ClientError(f"cannot download s3://{bucket}/{key} to {target}: a folder of that name exists "
                              "(another key uses it as a prefix).")
        download_file(f"s3://{bucket}/{key}", target, region, what=what, client=client)
        written.append(target)
    return written


def upload_directory(local_dir: str, uri: str, region: str | None = None, *, what: str | None = None,
                     client=None) -> list[str]:
    """Every file under ``local_dir`` to the folder ``uri``, keeping the layout.
    Returns the URIs written, in sorted path order."""
    if not os.path.isdir(local_dir):
        raise ClientError(f"cannot upload {local_dir}: it does not exist or is not a directory.")
    bucket, prefix = parse_s3_uri(uri)
    prefix = _prefix_dir(prefix)
    client = client or s3_client(region)
    files = []
    for dirpath, _, filenames in os.walk(local_dir):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.isfile(path):  # not a dangling link, socket or FIFO
                files.append((os.path.relpath(path, local_dir).replace(os.sep, "/"), path))
    return [upload_file(path, f"s3://{bucket}/{prefix}{relative}", region, what=what, client=client)
            for relative, path in sorted(files)]


# --------------------------------------------------------------------------
# The user's code


def _local_path(uri: str) -> str:
    if uri[:7].lower() != "file://":
        return uri
    parts = urllib.parse.urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise ClientError(f"sagemaker_submit_directory {uri!r} is not a local file URI: write it as "
                          "file:///absolute/path (three slashes).")
    path = urllib.parse.unquote(parts.path)
    if not path.startswith("/"):
        raise ClientError(f"sagemaker_submit_directory {uri!r} must name an absolute path: file:///absolute/path.")
    return path


def _scratch_parent(code_dir: str) -> str | None:
    """A writable folder on code_dir's file system for the downloaded tarball."""
    parent = os.path.dirname(os.path.abspath(code_dir))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError:
        return None
    return parent if os.access(parent, os.W_OK | os.X_OK) else None


def _copy_directory(source: str, code_dir: str) -> None:
    from . import archives  # noqa: PLC0415

    source_real = os.path.realpath(source)
    code_real = os.path.realpath(code_dir)
    if source_real == code_real:
        return  # already in place
    with archives.staged_directory(code_dir) as staged:
        skip = {os.path.realpath(staged), code_real}

        def ignore(directory, names):
            return [name for name in names if os.path.realpath(os.path.join(directory, name)) in skip
                    and not os.path.islink(os.path.join(directory, name))]

        try:
            shutil.copytree(source, staged, symlinks=True, ignore=ignore, dirs_exist_ok=True)
        except (shutil.Error, OSError) as exc:
            detail = exc.args[0][0][2] if isinstance(exc, shutil.Error) and exc.args and exc.args[0] else exc
            raise ClientError(f"cannot copy the code from {source} to {code_dir}: {detail}.") from None


def fetch_submit_dir(uri: str, code_dir: str, region: str | None = None) -> None:
    """Make ``code_dir`` hold exactly the user's code, from wherever
    ``sagemaker_submit_directory`` says it is:

    * ``s3://bucket/key/sourcedir.tar.gz`` (downloaded, then extracted), or an
      S3 folder ``s3://bucket/key/`` (every object under it);
    * ``file:///abs/path`` or a plain local path, to a tarball or a directory
      (copied; symlinks stay links).

    The previous content of ``code_dir`` is replaced only once the new code is
    complete.
    """
    from . import archives  # noqa: PLC0415

    what = "sagemaker_submit_directory"
    if not isinstance(uri, str) or not uri.strip():
        raise ClientError(f"{what} is empty: give the S3 URI or the local path of the code.")
    uri = uri.strip()
    if uri[:5].lower() == "s3://":
        bucket, key = parse_s3_uri(uri)
        client = s3_client(region)
        if not key or key.endswith("/"):
            with archives.staged_directory(code_dir) as staged:
                if not download_prefix(uri, staged, region, what=what, client=client):
                    raise ClientError(f"{uri} has no objects: check {what}.")
            return
        with tempfile.TemporaryDirectory(prefix=".sourcedir-", dir=_scratch_parent(code_dir)) as scratch:
            local = download_file(uri, os.path.join(scratch, os.path.basename(key)), region, what=what,
                                  client=client)
            archives.extract_tarball(local, code_dir, display_name=uri)
        return
    if "://" in uri and uri[:7].lower() != "file://":
        raise ClientError(f"{what} {uri!r} has an unsupported scheme: use s3://, file:// or a local path.")
    path = _local_path(uri)
    if not os.path.exists(path):
        raise ClientError(f"{what} {uri} does not exist: give an s3:// URI, a file:// URI, a local tarball "
                          "or a local directory.")
    if os.path.isdir(path):
        _copy_directory(path, code_dir)
    else:
        archives.extract_tarball(path, code_dir, display_name=uri)
