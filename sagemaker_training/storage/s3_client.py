"""The S3 client and its errors: how transfer.py reaches S3 and what a failure means.

Only transfer.py uses this module (it is the one layer that talks to S3). S3
URIs are read by uri.py's one parser (:func:`parse_s3_uri` here is it), and
one translation turns boto3's errors into ours (:class:`s3_errors`). boto3 is imported only inside the
functions that build or use a client, so a job whose code is already local
never pays for it.

The S3 client is built from the environment at call time:

* endpoint: ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``, else
  ``S3_ENDPOINT_URL`` (a custom endpoint also gets path-style addressing, as
  local S3 servers expect);
* region: the argument (``sagemaker_region``), else ``AWS_REGION``, else
  ``AWS_DEFAULT_REGION``, else ``us-east-1`` (params.region_from, the one rule);
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
import urllib.parse

from .. import params
from ..core import settings
from ..errors import ClientError, PlatformError, Redactor
from .uri import is_s3, parse_s3 as parse_s3_uri  # noqa: F401 - the S3 vocabulary of this layer

ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "S3_ENDPOINT_URL")
MAX_ATTEMPTS_ENV = "SAGEMAKER_S3_MAX_ATTEMPTS"
DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_REGION = params.DEFAULT_REGION
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
    return params.region_from(environ, region)


def max_attempts(environ=None) -> int:
    return settings.number(MAX_ATTEMPTS_ENV, DEFAULT_MAX_ATTEMPTS, integer=True, minimum=1, environ=environ)


def s3_client(region: str | None = None, environ=None, *, attempts: int | None = None):
    """A boto3 S3 client configured from ``environ`` (default: os.environ).

    An explicit ``environ`` that holds ``AWS_ACCESS_KEY_ID`` also gives the
    credentials (local mode's embedded endpoint), so a client never depends
    on this process's own environment when it is told another one.
    """
    import boto3.session  # noqa: PLC0415 - only jobs that touch S3 pay for boto3
    from botocore.config import Config  # noqa: PLC0415

    explicit = environ is not None
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
    credentials = {}
    if explicit and environ.get("AWS_ACCESS_KEY_ID"):
        credentials = {"aws_access_key_id": environ.get("AWS_ACCESS_KEY_ID"),
                       "aws_secret_access_key": environ.get("AWS_SECRET_ACCESS_KEY"),
                       "aws_session_token": environ.get("AWS_SESSION_TOKEN") or None}
    # A session per client: creating clients from boto3's shared default
    # session is not thread-safe.
    session = boto3.session.Session()
    return session.client("s3", region_name=region_name(region, environ), endpoint_url=endpoint,
                          config=Config(**options), **credentials)


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


class s3_errors:  # noqa: N801 - used as a context manager, like contextlib's helpers
    """``with s3_errors(client, uri, what):`` boto3 errors raised inside become ours."""

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
