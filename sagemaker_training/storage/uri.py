"""Locations, written once: S3 URIs, ``file://`` URIs and local paths.

Every layer that takes a location (the submit dir, the S3 layer, local
mode's request and flags, serve) reads it here, so one input means one thing
everywhere: schemes are case-insensitive (``S3://``, ``FILE://``), a
``file://`` URI names an absolute path on this machine (``file:///abs/path``
or ``file://localhost/abs/path``, percent-escapes decoded), and an S3 URI
whose key is empty or ends in ``/`` is a prefix, anything else an object.
Nothing here touches the network or imports boto3.
"""

from __future__ import annotations

import os

from ..errors import ClientError, lazy_pattern

_BUCKET = lazy_pattern(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_SCHEME = lazy_pattern(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://")


def is_s3(location) -> bool:
    return isinstance(location, str) and location[:5].lower() == "s3://"


def is_file_uri(location) -> bool:
    return isinstance(location, str) and location[:7].lower() == "file://"


def has_other_scheme(location: str) -> bool:
    """Whether ``location`` is a URI of a scheme other than s3 and file (http://, hdfs://, ...)."""
    return bool(_SCHEME().match(location)) and not is_s3(location) and not is_file_uri(location)


def parse_s3(uri, what: str | None = None) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` as (bucket, key); the key may be empty.

    The one parser of S3 URIs; ``what`` (a field or hyperparameter name)
    starts the message of a malformed one (a ClientError).
    """
    lead = f"{what}: " if what else ""
    if not is_s3(uri):
        raise ClientError(f"{lead}{uri!r} is not an S3 URI: write it as s3://bucket/key.")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ClientError(f"{lead}{uri!r} has no bucket name: write it as s3://bucket/key.")
    if not _BUCKET().match(bucket):
        raise ClientError(f"{lead}{uri!r} has an invalid bucket name {bucket!r}: S3 bucket names are 3-63 "
                          "characters of a-z, 0-9, '.' and '-', starting and ending with a letter or digit.")
    return bucket, key


def is_prefix(uri: str) -> bool:
    """Whether an S3 URI names a prefix (its key empty or ending in ``/``) rather than one object."""
    key = uri[5:].partition("/")[2]
    return not key or key.endswith("/")


def local_path(location: str, what: str) -> str:
    """The path a ``file://`` URI names (a plain path is returned as it is).

    ``file:///abs/path`` and ``file://localhost/abs/path``; percent-escapes are
    decoded. Another host, or a path that is not absolute, is a ClientError
    starting with ``what``.
    """
    if not is_file_uri(location):
        return location
    import urllib.parse  # noqa: PLC0415 - only for a file:// URI (it imports ipaddress: ~2 ms of every start)

    parts = urllib.parse.urlsplit(location)
    if parts.netloc not in ("", "localhost"):
        raise ClientError(f"{what} {location!r} is not a local file URI: write it as file:///absolute/path "
                          "(three slashes).")
    path = urllib.parse.unquote(parts.path)
    if not path.startswith("/"):
        raise ClientError(f"{what} {location!r} must name an absolute path: file:///absolute/path.")
    return path


def normalize(location: str, what: str) -> str:
    """An S3 URI checked and kept as it is; a ``file://`` URI or a local path as an absolute path.
    Any other scheme is a ClientError starting with ``what``."""
    if is_s3(location):
        parse_s3(location, what)
        return location
    if is_file_uri(location):
        return os.path.abspath(local_path(location, what))
    if has_other_scheme(location):
        raise ClientError(f"{what}: {location!r} is neither an s3:// URI nor a local path.")
    return os.path.abspath(os.path.expanduser(location))


def join(location: str, *parts: str) -> str:
    """``location`` (an S3 URI or a local path) with ``parts`` below it."""
    if is_s3(location):
        return "/".join([location.rstrip("/"), *parts])
    return os.path.join(location, *parts)


def as_uri(location: str) -> str:
    """An S3 URI as it is; a local path as a ``file://`` URI (how DescribeTrainingJob shows it)."""
    return location if is_s3(location) or is_file_uri(location) else f"file://{location}"


def artifact_location(output_path: str, job_name: str, name: str) -> str:
    """Where a job's artifact ``name`` goes: ``<S3OutputPath>/<job>/output/<name>``."""
    return join(output_path, job_name, "output", name)
