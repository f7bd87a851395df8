"""Tarballs: extraction as an explicit safety policy, and packing.

The policy (in the spirit of PEP 706's ``data`` filter, stricter on links):
every member is checked before anything is written, and the archive is
refused when a member

* has an absolute name or a ``..`` component,
* is a hard link (any),
* is a symbolic link whose target leaves the destination,
* is a device or a FIFO.

Set-uid, set-gid and sticky bits are dropped and ownership is not applied.
Extraction goes to a temporary sibling of the destination that replaces it
only when everything was written, so a failure never leaves a half-extracted
code dir behind.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile

from .errors import ClientError


def _refuse(archive: str, member: str, why: str) -> ClientError:
    return ClientError(
        f"refusing to extract {os.path.basename(archive)}: member {member!r} {why}; "
        "rebuild the archive from the source directory alone."
    )


def check_member(archive: str, member: tarfile.TarInfo) -> None:
    """Raise ClientError if ``member`` breaks the extraction policy."""
    name = member.name
    if name.startswith("/") or os.path.isabs(name):
        raise _refuse(archive, name, "has an absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise _refuse(archive, name, "contains '..'")
    if member.islnk():
        raise _refuse(archive, name, f"is a hard link (to {member.linkname!r})")
    if member.issym():
        target = member.linkname
        if os.path.isabs(target):
            raise _refuse(archive, name, f"is a symbolic link to the absolute path {target!r}")
        resolved = os.path.normpath(os.path.join(os.path.dirname(name), target))
        if resolved == ".." or resolved.startswith("../") or os.path.isabs(resolved):
            raise _refuse(archive, name, f"is a symbolic link leading outside the code dir ({target!r})")
    if member.ischr() or member.isblk():
        raise _refuse(archive, name, "is a device file")
    if member.isfifo():
        raise _refuse(archive, name, "is a FIFO")
    if not (member.isfile() or member.isdir() or member.issym()):
        raise _refuse(archive, name, "is not a regular file, directory or symbolic link")


def _open(archive: str) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except FileNotFoundError:
        raise ClientError(f"{archive} does not exist.")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ClientError(f"{os.path.basename(archive)} is not a gzip or tar archive ({exc}): "
                          "upload the source as sourcedir.tar.gz (tar czf).")


def extract_tarball(archive_path: str, dest_dir: str) -> None:
    """Extract ``archive_path`` into ``dest_dir`` under the policy above."""
    dest_dir = os.path.abspath(dest_dir)
    parent = os.path.dirname(dest_dir)
    os.makedirs(parent, exist_ok=True)
    with _open(archive_path) as tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ClientError(f"{os.path.basename(archive_path)} is truncated or corrupt ({exc}): upload it again.")
        for member in members:
            check_member(archive_path, member)
        staging = tempfile.mkdtemp(prefix=".extract-", dir=parent)
        try:
            for member in members:
                _extract_one(tar, member, staging, archive_path)
            _replace_dir(staging, dest_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def _extract_one(tar: tarfile.TarFile, member: tarfile.TarInfo, root: str, archive: str) -> None:
    target = os.path.join(root, member.name)
    if not os.path.abspath(target).startswith(root + os.sep) and os.path.abspath(target) != root:
        raise _refuse(archive, member.name, "leads outside the code dir")
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    if os.path.islink(parent) or not os.path.realpath(parent).startswith(os.path.realpath(root)):
        raise _refuse(archive, member.name, "would be written through a symbolic link")
    mode = member.mode & 0o777
    if member.isdir():
        os.makedirs(target, exist_ok=True)
        os.chmod(target, mode | 0o700)
    elif member.issym():
        if os.path.lexists(target):
            os.remove(target)
        os.symlink(member.linkname, target)
    else:
        try:
            source = tar.extractfile(member)
            if os.path.lexists(target):
                os.remove(target)
            with source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ClientError(f"{os.path.basename(archive)} is truncated or corrupt at {member.name!r} ({exc}): "
                              "upload it again.")
        os.chmod(target, mode | 0o600)


def _replace_dir(staging: str, dest_dir: str) -> None:
    old = None
    if os.path.lexists(dest_dir):
        old = tempfile.mkdtemp(prefix=".old-", dir=os.path.dirname(dest_dir))
        os.rmdir(old)
        os.rename(dest_dir, old)
    os.rename(staging, dest_dir)
    os.chmod(dest_dir, 0o755)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def pack_directory(src_dir: str, archive_path: str) -> str:
    """Write ``src_dir``'s contents, at the archive root, to ``archive_path`` (.tar.gz)."""
    archive_path = os.path.abspath(archive_path)
    os.makedirs(os.path.dirname(archive_path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pack-", suffix=".tar.gz", dir=os.path.dirname(archive_path))
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for dirpath, dirnames, filenames in os.walk(src_dir):
                dirnames.sort()
                for name in sorted(dirnames) + sorted(filenames):
                    path = os.path.join(dirpath, name)
                    if os.path.abspath(path) == archive_path:
                        continue
                    tar.add(path, arcname=os.path.relpath(path, src_dir), recursive=False)
        os.replace(tmp, archive_path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return archive_path
