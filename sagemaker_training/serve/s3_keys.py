"""The object keys the embedded S3 can keep apart.

SeaweedFS stores an object as a file under its bucket's directory, so a key's
empty path segments vanish: ``/x``, ``x`` and ``a//b`` / ``a/b`` would be one
object each. S3 keeps them apart; here such a key (in the path, or in
``x-amz-copy-source``) is refused with S3's ``InvalidArgument`` before it
reaches the S3, so that two keys never silently share an object.
"""

from __future__ import annotations

import urllib.parse

from .auth import Refused


def _key_of(path: str) -> str:
    bucket_and_key = urllib.parse.unquote(path).lstrip("/")
    return bucket_and_key.partition("/")[2]


def check(path: str, headers) -> None:
    """Raise auth.Refused (S3's InvalidArgument) when the request names a key with an empty segment."""
    keys = [_key_of(urllib.parse.urlsplit(path).path)]
    source = headers.get("x-amz-copy-source")
    if source:
        keys.append(_key_of("/" + source.split("?", 1)[0].lstrip("/")))
    for key in keys:
        if key.startswith("/") or "//" in key:
            raise Refused("s3", "InvalidArgument",
                          f"Object key {key[:100]!r} has an empty path segment (a leading '/' or '//'): this S3 "
                          "(SeaweedFS) would store it as the key without it. Use a key without empty segments.",
                          400)
