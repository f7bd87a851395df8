"""Where the user's code and the job's artifacts live: S3, ``file://``, local paths.

This is the only module that talks to S3 or copies between locations: the
submit dir (submit_dir.py), local mode's channels and artifacts and the
TensorFlow checkpoint mirror all go through it. Listing (:func:`list_files`,
:func:`list_prefix`), downloading (:func:`fetch`, :func:`download_file`,
:func:`download_prefix`, each with an optional ``progress(nbytes)``
callback), streaming one file's content in chunks (:func:`read_chunks`),
uploading (:func:`store`, :func:`upload_file`, :func:`upload_directory`) and
mirroring a directory (:func:`sync_directory`).
One rule (:func:`relative_parts`) refuses, naming it, a key that would land
outside its destination. The client, its configuration from the environment
and the translation of boto3's errors into ours live in s3_client.py; what a
location means (S3 or ``file://``, prefix or object) in uri.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from dataclasses import dataclass

from ..errors import ClientError
from .s3_client import (  # noqa: F401 - the S3 vocabulary callers use through transfer
    DEFAULT_MAX_ATTEMPTS, ENDPOINT_VARIABLES, MAX_ATTEMPTS_ENV, _bucket_exists, endpoint_url, is_s3, max_attempts,
    parse_s3_uri, region_name, s3_client, s3_errors as _s3_errors)
from .uri import is_prefix, join  # noqa: F401 - join: callers use it through transfer


# --------------------------------------------------------------------------
# Keys and locations


def _object_key(uri: str) -> tuple[str, str]:
    bucket, key = parse_s3_uri(uri)
    if is_prefix(uri):
        raise ClientError(f"{uri} names no object (it ends in '/'): give the full key, e.g. s3://{bucket}/path/file.")
    return bucket, key


def _prefix_dir(prefix: str) -> str:
    """A key prefix used as a directory: '' or ending in '/'."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


# --------------------------------------------------------------------------
# Where a key lands


def relative_parts(uri: str, prefix: str, destination: str) -> list[str]:
    """The path components below ``destination`` of the object ``uri`` listed
    under ``prefix``: the one rule for every download. A key that would land
    outside the destination (a ``..`` component) is a ClientError naming it;
    an empty result means the prefix itself (a folder marker)."""
    key = parse_s3_uri(uri)[1]
    parts = [part for part in key[len(prefix):].split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ClientError(f"refusing to download {uri}: its key would be written outside {destination}; "
                          "rename the object.")
    return parts


# --------------------------------------------------------------------------
# Files and prefixes


def download_file(uri: str, path: str, region: str | None = None, *, what: str | None = None,
                  client=None, progress=None) -> str:
    """The object at ``uri`` into ``path`` (which appears only when complete).
    ``progress(nbytes)`` is called as bytes arrive (from transfer threads)."""
    bucket, key = _object_key(uri)
    client = client or s3_client(region)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with _s3_errors(client, uri, what):
        # s3transfer writes a temporary file, then renames it
        client.download_file(bucket, key, path, Callback=progress)
    return path


def upload_file(path: str, uri: str, region: str | None = None, *, what: str | None = None, client=None,
                progress=None) -> str:
    """``path`` to ``uri``; a URI ending in '/' gets the file's name. Returns the object's URI."""
    if not os.path.isfile(path):
        raise ClientError(f"cannot upload {path}: it does not exist or is not a file.")
    bucket, key = parse_s3_uri(uri)
    if is_prefix(uri):
        key = f"{key}{os.path.basename(path)}"
        uri = f"s3://{bucket}/{key}"
    client = client or s3_client(region)
    with _s3_errors(client, uri, what):
        client.upload_file(path, bucket, key, Callback=progress)
    return uri


def _list_objects(uri: str, region, what, client) -> list[tuple[str, int]]:
    bucket, prefix = parse_s3_uri(uri)
    client = client or s3_client(region)
    found: list[tuple[str, int]] = []
    with _s3_errors(client, uri, what):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.extend((item["Key"], int(item.get("Size", 0))) for item in page.get("Contents", []))
    return found


def list_prefix(uri: str, region: str | None = None, *, what: str | None = None, client=None) -> list[str]:
    """Every key that starts with the URI's key (S3's own prefix sense), in S3's order."""
    return [key for key, _ in _list_objects(uri, region, what, client)]


@dataclass(frozen=True)
class Entry:
    """One file of a location: where it is, where it goes below a directory, how big."""

    source: str  # s3://bucket/key or a local path
    relative: str  # '/'-separated path below the destination directory
    size: int


def list_files(location: str, region: str | None = None, *, what: str | None = None, client=None,
               destination: str = "its destination directory") -> list[Entry]:
    """Every file under an S3 prefix (S3's prefix sense, as a channel's
    ``S3Prefix``) or a local path (a file, or a directory's files), in key
    order either way (a directory's relative paths ordered as S3 orders the
    same keys). Every key is checked by :func:`relative_parts` here, before
    anything is downloaded; folder markers are left out."""
    if is_s3(location):
        bucket, prefix = parse_s3_uri(location)
        entries = []
        for key, size in _list_objects(location, region, what, client):
            uri = f"s3://{bucket}/{key}"
            parts = relative_parts(uri, prefix, destination)
            if key.endswith("/"):
                continue
            entries.append(Entry(uri, "/".join(parts) or os.path.basename(key), size))
        return entries
    if os.path.isfile(location):
        return [Entry(location, os.path.basename(location), os.path.getsize(location))]
    entries = []
    for root, _, files in os.walk(location):
        for name in files:
            path = os.path.join(root, name)
            if os.path.isfile(path):  # not a dangling link, socket or FIFO
                entries.append(Entry(path, os.path.relpath(path, location).replace(os.sep, "/"),
                                     os.path.getsize(path)))
    return sorted(entries, key=lambda entry: entry.relative)  # code points: S3's order of UTF-8 keys


def fetch(entry: Entry, target: str, region: str | None = None, *, what: str | None = None, client=None,
          progress=None) -> str:
    """One listed file (S3 or local) to the local path ``target``."""
    if is_s3(entry.source):
        return download_file(entry.source, target, region, what=what, client=client, progress=progress)
    return _copy_file(entry.source, target, progress)


CHUNK = 1 << 20  # bytes a stream hands over at a time


def read_chunks(entry: Entry, region: str | None = None, *, what: str | None = None, client=None,
                chunk_size: int = CHUNK):
    """The content of one listed file (S3 or local), as a generator of chunks
    of at most ``chunk_size`` bytes: nothing more than a chunk is held, so an
    object of any size streams (local mode's Pipe-mode channels). Closing the
    generator closes the connection or the file."""
    if not is_s3(entry.source):
        with open(entry.source, "rb") as f:
            while chunk := f.read(chunk_size):
                yield chunk
        return
    bucket, key = _object_key(entry.source)
    client = client or s3_client(region)
    with _s3_errors(client, entry.source, what):
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        while True:
            with _s3_errors(client, entry.source, what):
                chunk = body.read(chunk_size)
            if not chunk:
                return
            yield chunk
    finally:
        body.close()


def store(path: str, location: str, region: str | None = None, *, what: str | None = None, client=None,
          progress=None) -> str:
    """The local file ``path`` to ``location`` (an S3 URI, or a local path
    that appears only when complete). Returns the location written."""
    if is_s3(location):
        return upload_file(path, location, region, what=what, client=client, progress=progress)
    try:
        return _copy_file(path, location, progress)
    except OSError as exc:
        raise ClientError(f"cannot write {location}{f' ({what})' if what else ''}: "
                          f"{exc.strerror or type(exc).__name__}.") from None


def _copy_file(source: str, target: str, progress=None) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    tmp = f"{target}.{os.getpid()}.tmp"
    try:
        shutil.copyfile(source, tmp)
        shutil.copystat(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if progress:
        progress(os.path.getsize(target))
    return target


def download_prefix(uri: str, local_dir: str, region: str | None = None, *, what: str | None = None,
                    client=None, skip=None, progress=None) -> list[str]:
    """Every object under ``uri`` (taken as a folder: ``s3://b/ckpt`` means the
    keys under ``ckpt/``) into ``local_dir``, keeping the layout below it.

    Keys are all checked before anything is written; a key that would leave
    ``local_dir`` (a ``..`` component) is refused. Folder markers (keys
    ending in '/') are skipped, and so are the relative paths for which
    ``skip(relative)`` is true. Returns the local paths written, in key order.
    """
    bucket, prefix = parse_s3_uri(uri)
    folder = f"s3://{bucket}/{_prefix_dir(prefix)}"
    root = os.path.abspath(local_dir)
    plan = []
    for entry in list_files(folder, region, what=what, client=client, destination=local_dir):
        if skip is None or not skip(entry.relative):
            plan.append((entry, os.path.join(root, *entry.relative.split("/"))))
    client = client or s3_client(region)
    written = []
    for entry, target in plan:
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
        except OSError as exc:
            raise ClientError(f"cannot download {entry.source} to {target}: {exc.strerror}; "
                              "another object's key uses that path as a file.") from None
        if os.path.isdir(target):
            raise ClientError(f"cannot download {entry.source} to {target}: a folder of that name exists "
                              "(another key uses it as a prefix).")
        download_file(entry.source, target, region, what=what, client=client, progress=progress)
        written.append(target)
    return written


def _file_state(path: str, root: str):
    """(size, mtime_ns) of the regular file at ``path``, or None. A symbolic
    link counts only when it resolves inside ``root`` (a real path): a link
    leaving the directory is never followed, so nothing outside is uploaded."""
    try:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(path)
            if os.path.commonpath([target, root]) != root:
                return None
            st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):  # deleted while we walked
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


def _local_files(local_dir: str, skip) -> dict:
    """'/'-separated relative path -> (size, mtime_ns) of every regular file
    (directory links are not walked; file links only when they stay inside)."""
    found = {}
    root = os.path.realpath(local_dir)
    for dirpath, _, filenames in os.walk(local_dir):
        for name in filenames:
            path = os.path.join(dirpath, name)
            relative = os.path.relpath(path, local_dir).replace(os.sep, "/")
            if skip is not None and skip(relative):
                continue
            state = _file_state(path, root)
            if state is not None:
                found[relative] = state
    return found


def upload_directory(local_dir: str, uri: str, region: str | None = None, *, what: str | None = None,
                     client=None) -> list[str]:
    """Every file under ``local_dir`` to the folder ``uri``, keeping the layout.
    Returns the URIs written, in sorted path order."""
    if not os.path.isdir(local_dir):
        raise ClientError(f"cannot upload {local_dir}: it does not exist or is not a directory.")
    client = client or s3_client(region)
    return [upload_file(os.path.join(local_dir, *relative.split("/")), join(uri, relative), region, what=what,
                        client=client)
            for relative in sorted(_local_files(local_dir, None))]


def sync_directory(local_dir: str, uri: str, synced: dict, region: str | None = None, *, what: str | None = None,
                   client=None, skip=None, last: tuple = ()) -> int:
    """Make the folder ``uri`` a copy of ``local_dir``; returns how many objects changed.

    ``synced`` (relative path -> (size, mtime_ns) the bucket holds) is read
    and updated: new and changed files are uploaded, files gone from the
    directory are deleted from the bucket. The files named in ``last`` are
    read *before* the directory is scanned and written after everything
    else, so an index such as TensorFlow's ``checkpoint`` never names files
    the bucket does not hold yet. ``skip(relative)``: files still being written.
    """
    bucket, prefix = parse_s3_uri(uri)
    prefix = _prefix_dir(prefix)
    client = client or s3_client(region)
    held = {}
    for name in last:
        path = os.path.join(local_dir, *name.split("/"))
        state = _file_state(path, os.path.realpath(local_dir))
        with contextlib.suppress(FileNotFoundError):
            if state is not None:
                with open(path, "rb") as f:
                    held[name] = (f.read(), state)
    current = _local_files(local_dir, skip)
    changes = 0
    for relative, state in sorted(current.items()):
        if relative in last or synced.get(relative) == state:
            continue
        try:
            upload_file(os.path.join(local_dir, *relative.split("/")), f"s3://{bucket}/{prefix}{relative}",
                        region, what=what, client=client)
        except ClientError:
            if os.path.exists(os.path.join(local_dir, *relative.split("/"))):
                raise
            continue  # deleted since the scan (an old checkpoint)
        synced[relative] = state
        changes += 1
    for name, (data, state) in held.items():
        if synced.get(name) != state:
            target = f"s3://{bucket}/{prefix}{name}"
            with _s3_errors(client, target, what):
                client.put_object(Bucket=bucket, Key=f"{prefix}{name}", Body=data)
            synced[name] = state
            changes += 1
    gone = sorted(r for r in synced if r not in current and r not in held
                  and not os.path.exists(os.path.join(local_dir, *r.split("/"))))
    for start in range(0, len(gone), 1000):
        batch = gone[start:start + 1000]
        with _s3_errors(client, uri, what):
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"{prefix}{r}"} for r in batch],
                                                         "Quiet": True})
        for relative in batch:
            synced.pop(relative, None)
        changes += len(batch)
    return changes


# --------------------------------------------------------------------------
# Buckets


def check_bucket(uri: str, region: str | None = None, *, what: str | None = None, client=None) -> None:
    """Nothing when the bucket of ``uri`` exists and can be reached, else the
    translated error (a missing bucket or a refused access: ClientError)."""
    bucket, _ = parse_s3_uri(uri, what)
    client = client or s3_client(region)
    with _s3_errors(client, uri, what):
        client.head_bucket(Bucket=bucket)


def create_bucket(bucket: str, region: str | None = None, *, client=None) -> None:
    """Create ``bucket`` (nothing when this account already owns it)."""
    client = client or s3_client(region)
    region = client.meta.region_name
    options = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    uri = f"s3://{bucket}"
    try:
        with _s3_errors(client, uri, "the bucket"):
            client.create_bucket(Bucket=bucket, **options)
    except ClientError:
        if not _bucket_exists(client, bucket):
            raise
