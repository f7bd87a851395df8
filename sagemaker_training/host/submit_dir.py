"""The user's code into the code dir, from wherever ``sagemaker_submit_directory`` says.

:func:`fetch_submit_dir` makes the code dir hold exactly the user's code: an
S3 tarball or folder (downloaded through transfer.py, the only module that
talks to S3), a ``file://`` URI or a local path to a tarball or a directory.
The new code is built beside the old and swapped in only when complete
(staging.py). A code dir that holds someone else's files (a symbolic link, a
mount point, or a mount point anywhere below it) is never replaced.
"""

from __future__ import annotations

import os
import shutil

from .. import params
from ..archives import staging
from ..errors import ClientError
from ..storage import uri as uri_rules

WHAT = params.SUBMIT_DIRECTORY


def _local_path(location: str) -> str:
    return uri_rules.local_path(location, WHAT)


def _scratch_parent(code_dir: str) -> str | None:
    """A writable folder on code_dir's file system for the downloaded tarball."""
    parent = os.path.dirname(os.path.abspath(code_dir))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError:
        return None
    return parent if os.access(parent, os.W_OK | os.X_OK) else None


def _refuse_foreign_code_dir(code_dir: str, uri: str) -> None:
    """The code dir is replaced only when it is a plain directory: a symbolic
    link or a mount point (``docker run -v $PWD:/opt/ml/code``), or a mount
    point anywhere inside it, holds someone else's files, which the toolkit
    never deletes."""
    path = os.path.abspath(code_dir)
    if os.path.islink(path):
        why = f"is a symbolic link to {os.path.realpath(path)}"
    elif not os.path.isdir(path):
        return
    else:
        real = os.path.realpath(path)
        mounts = staging.mount_points()
        inner = sorted(m for m in mounts if m.startswith(real.rstrip("/") + "/"))
        if os.path.ismount(path) or real in mounts:
            why = "is a mount point"
        elif inner:
            why = f"has a mount point inside it ({inner[0]})"
        else:
            return
    raise ClientError(f"the code directory {path} {why}, so its files are not the toolkit's to replace, and "
                      f"{WHAT} names other code ({uri}): unset {WHAT} to run the code that is there, or mount it "
                      "somewhere else.")


def _copy_directory(source: str, code_dir: str) -> None:
    code_real = os.path.realpath(code_dir)
    with staging.staged_directory(code_dir) as staged:
        skip = {os.path.realpath(staged), code_real}

        def ignore(directory, names):
            return [name for name in names if os.path.realpath(os.path.join(directory, name)) in skip
                    and not os.path.islink(os.path.join(directory, name))]

        try:
            shutil.copytree(source, staged, symlinks=True, ignore=ignore, dirs_exist_ok=True)
        except (shutil.Error, OSError) as exc:
            detail = exc.args[0][0][2] if isinstance(exc, shutil.Error) and exc.args and exc.args[0] else exc
            raise ClientError(f"cannot copy the code from {source} to {code_dir}: {detail}.") from None


def _fetch_from_s3(uri: str, code_dir: str, region: str | None) -> None:
    from ..archives import tarball  # noqa: PLC0415 - these two only for code on S3 (tarfile, dataclasses)
    from ..storage import transfer  # noqa: PLC0415

    key = transfer.parse_s3_uri(uri)[1]
    client = transfer.s3_client(region)
    if uri_rules.is_prefix(uri):
        with staging.staged_directory(code_dir) as staged:
            if not transfer.download_prefix(uri, staged, region, what=WHAT, client=client):
                raise ClientError(f"{uri} has no objects: check {WHAT}.")
        return
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix=".sourcedir-", dir=_scratch_parent(code_dir)) as scratch:
        local = transfer.download_file(uri, os.path.join(scratch, os.path.basename(key)), region, what=WHAT,
                                      client=client)
        tarball.extract_tarball(local, code_dir, display_name=uri)


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
    if not isinstance(uri, str) or not uri.strip():
        raise ClientError(f"{WHAT} is empty: give the S3 URI or the local path of the code.")
    uri = uri.strip()
    local = not uri_rules.is_s3(uri) and not uri_rules.has_other_scheme(uri)
    if local and os.path.isdir(_local_path(uri)) and os.path.realpath(_local_path(uri)) == os.path.realpath(code_dir):
        return  # already in place (the SDK's local mode: /opt/ml/code itself): nothing moves
    _refuse_foreign_code_dir(code_dir, uri)
    if uri_rules.is_s3(uri):
        _fetch_from_s3(uri, code_dir, region)
        return
    if not local:
        raise ClientError(f"{WHAT} {uri!r} has an unsupported scheme: use s3://, file:// or a local path.")
    path = _local_path(uri)
    if not os.path.exists(path):
        raise ClientError(f"{WHAT} {uri} does not exist: give an s3:// URI, a file:// URI, a local tarball "
                          "or a local directory.")
    if os.path.isdir(path):
        _copy_directory(path, code_dir)
    else:
        from ..archives import tarball  # noqa: PLC0415 - tarfile only for a tarball

        tarball.extract_tarball(path, code_dir, display_name=uri)
