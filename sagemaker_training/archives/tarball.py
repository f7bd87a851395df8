"""Tarballs in and out, with an explicit safety policy.

``extract_tarball`` unpacks an archive the user handed us (the SDK's
``sourcedir.tar.gz``) with ``tarfile``'s own extraction (PEP 706's ``data``
filter, Python 3.11.4 and later) under the project's policy on top of it
(:mod:`.policy`). A Python without PEP 706 (Debian bookworm's 3.11.2, the
images' Python) gets the same result: the policy already refuses everything
the ``data`` filter does, and the filter's remaining part (owners dropped,
modes below) is applied to a copy of each member before ``tarfile`` extracts
it:

* allowed: regular files, directories, and symbolic links whose target stays
  inside the destination (relative, no way out through ``..`` or through
  other links in the archive);
* refused: absolute member names, names with a ``..`` component, links that
  leave the destination, every hard link, character and block devices, FIFOs,
  GNU sparse files and any other special member, names deeper than
  ``MAX_DEPTH`` directories or with a component over 255 bytes, contents
  that add up to more than ``SAGEMAKER_MAX_CODE_BYTES`` (default 10 GiB,
  checked from the headers before anything is written), and anything that
  is not a readable tar/gzip/bzip2/xz archive (corrupt or truncated ones
  included);
* permissions: the rwx bits are kept (the owner always gets read and write,
  group and others never get write), setuid, setgid and sticky bits are
  dropped, and ownership is never applied.

Every member is checked before anything is written; the archive is then
unpacked into a staging directory beside the destination, which replaces the
destination only once everything is in place (:mod:`sagemaker_training.archives.staging`), so a
refused or broken archive leaves the destination as it was.

``pack_directory`` writes the other direction: a ``.tar.gz`` of a directory's
contents, as the SageMaker SDK packs ``sourcedir.tar.gz`` and the platform
packs ``model.tar.gz``.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import io
import os
import stat
import tarfile
import tempfile
import zlib

from ..errors import ClientError
from .staging import staged_directory
from .policy import Policy, Refused, max_code_bytes, shown_name

_REPACK_HINT = "repack the code without it (e.g. tar -czf sourcedir.tar.gz -C <source dir> .) and upload it again"
_FILE_MODE_KEEP = 0o755  # rwx for the owner, r-x for group and others; never write for group/others
_CHUNK = 1024 * 1024


# --------------------------------------------------------------------------
# Extraction


def _open(archive_path: str, label: str):
    try:
        return tarfile.open(archive_path, "r:*")
    except FileNotFoundError:
        raise ClientError(f"archive {label} does not exist: check the path.") from None
    except IsADirectoryError:
        raise ClientError(f"archive {label} is a directory, not a tar or gzip file.") from None
    except PermissionError:
        raise ClientError(f"archive {label} cannot be read (permission denied): check its permissions.") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        if _compressed(archive_path):
            raise _corrupt(label, exc) from None
        empty = os.path.isfile(archive_path) and os.path.getsize(archive_path) == 0
        raise ClientError(
            f"{label} is not a tar or gzip archive ({'it is empty' if empty else _short(exc)}): give a .tar.gz "
            "of the code, "
            "e.g. tar -czf sourcedir.tar.gz -C <source dir> ."
        ) from None


_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


def _compressed(path: str) -> bool:
    """Whether the file starts like a gzip, bzip2 or xz stream (so a failure
    to read it means damage rather than the wrong kind of file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        return False
    return head.startswith(_COMPRESSED_MAGIC)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text.rstrip(":")


def _corrupt(label: str, exc: BaseException) -> ClientError:
    return ClientError(
        f"{label} is corrupt or truncated ({_short(exc)}): upload the archive again (check that the upload "
        "completed)."
    )


def _refused(label: str, refusal: Refused) -> ClientError:
    return ClientError(f"refusing to extract {label}: member {shown_name(refusal.member)} {refusal.why}; "
                       f"{_REPACK_HINT}")


def _validate(archive_path: str, label: str, max_bytes: int) -> None:
    """Pass one: read every header (and all the compressed data) without writing."""
    policy = Policy(max_bytes)
    with _open(archive_path, label) as tar:
        try:
            for member in tar:
                policy.check(member)
            policy.check_final()
            # Reading to the end verifies the compressed stream's trailer and
            # shows truncation that falls after the last header.
            while tar.fileobj.read(_CHUNK):
                pass
        except Refused as refusal:
            raise _refused(label, refusal) from None
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise _corrupt(label, exc) from None
        last = tar.members[-1] if tar.members else None
        if last is not None and last.isreg() and isinstance(tar.fileobj, io.BufferedReader):
            # an uncompressed tar, where skipping past the end of the file is silent:
            # the last member's data must be in the file
            if last.offset_data + last.size > os.path.getsize(archive_path):
                raise _corrupt(label, EOFError("unexpected end of data"))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _file_mode(mode: int) -> int:
    return (mode & _FILE_MODE_KEEP) | 0o600


def _dir_mode(mode: int) -> int:
    return (mode & _FILE_MODE_KEEP) | 0o700


class _Filter:
    """The extraction filter ``tarfile`` calls on each member just before it extracts it: the
    project's policy first (:class:`.policy.Policy`: names, kinds, depth, link chains, the size
    limit; its own messages), then ``tarfile.data_filter`` (PEP 706: no absolute names, nothing
    outside the destination, no special files, owners dropped), then this module's permissions.
    What the archive itself put at the member's place before (a file, a link) is removed first,
    so that a member replaces it instead of being written through it."""

    def __init__(self, max_bytes: int):
        self.policy = Policy(max_bytes)
        self.member = None  # the member being extracted, for an error message

    def __call__(self, member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        self.member = member
        location = self.policy.check(member)
        if location is None:
            return None  # "./": the destination itself
        filtered = _data_filter(member, dest)
        root = os.path.realpath(dest)
        path = os.path.join(root, *location)
        if not _inside(os.path.realpath(os.path.dirname(path)), root):  # the policy resolved it; the tree agrees
            raise Refused(member.name, "leads outside the destination through a symbolic link")
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            os.unlink(path)
        elif os.path.isdir(path) and not member.isdir():
            raise Refused(member.name, "replaces a directory of the same name")
        if member.isdir():
            return _with(filtered, mode=_dir_mode(member.mode))
        if member.isreg():
            return _with(filtered, mode=_file_mode(member.mode))
        return filtered


def _data_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """PEP 706's ``data`` filter where this Python has it. Without it (before 3.11.4), what the
    policy has not already refused is its last part: no owner is applied (this process's own ids,
    so that ``tarfile``'s chown as root changes nothing)."""
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is not None:
        return data_filter(member, dest)
    return _with(member, uid=os.geteuid(), gid=os.getegid(), uname="", gname="")


def _with(member: tarfile.TarInfo, **changes) -> tarfile.TarInfo:
    """A copy of ``member`` with ``changes`` (``TarInfo.replace`` where it exists)."""
    if hasattr(member, "replace"):
        return member.replace(**changes, deep=False)
    changed = copy.copy(member)
    for name, value in changes.items():
        setattr(changed, name, value)
    return changed


def _filtered(tar: tarfile.TarFile, extraction_filter, root: str):
    for member in tar:  # one at a time, each just before tarfile extracts it
        filtered = extraction_filter(member, root)
        if filtered is not None:
            yield filtered


def extract_tarball(archive_path: str, dest_dir: str, *, display_name: str | None = None) -> None:
    """Unpack ``archive_path`` (tar, tar.gz, tar.bz2, tar.xz) so that
    ``dest_dir`` holds exactly its contents, under the module's policy.

    ``display_name`` is what error messages call the archive (an S3 URI for
    a downloaded temporary file); the path itself by default.
    """
    label = display_name or archive_path
    max_bytes = max_code_bytes()
    _validate(archive_path, label, max_bytes)
    with staged_directory(dest_dir) as staged:
        root = os.path.realpath(staged)
        extraction_filter = _Filter(max_bytes)
        with _open(archive_path, label) as tar:
            try:
                # members read one by one (the archive is a stream); directories' modes and times
                # are set last, deepest first, so that a read-only one does not stop its own files
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(root, filter=extraction_filter)
                else:  # no ``filter`` argument: the same filter over the members it extracts
                    tar.extractall(root, members=_filtered(tar, extraction_filter, root))
            except Refused as refusal:
                raise _refused(label, refusal) from None
            except tarfile.FilterError as exc:  # data_filter's refusal, where the policy had none
                why = str(exc).replace(repr(exc.tarinfo.name), "").strip() if exc.tarinfo else str(exc)
                raise _refused(label, Refused(exc.tarinfo.name if exc.tarinfo else "?", why)) from None
            except (tarfile.TarError, EOFError, zlib.error) as exc:
                raise _corrupt(label, exc) from None
            except OSError as exc:
                if exc.errno is None:  # gzip.BadGzipFile and the like: the data, not the disk
                    raise _corrupt(label, exc) from None
                member = extraction_filter.member
                where = f" (member {shown_name(member.name)})" if member is not None else ""
                if exc.errno == errno.ENAMETOOLONG:
                    raise ClientError(f"cannot extract {label}: {exc.strerror}{where} below {dest_dir}: extract it "
                                      "to a shorter destination, or shorten the member's path.") from None
                raise ClientError(
                    f"cannot extract {label}: {exc.strerror or exc}{where} into {dest_dir}; "
                    "check the free disk space and the permissions there."
                ) from None


# --------------------------------------------------------------------------
# Packing


def _entries(src: str, follow_outside_files: bool):
    """(archive name, path, kind) for everything under ``src``, sorted by name.

    What is packed is what is in ``src``: a symbolic link is stored as a
    link (its target text as it is) and never walked, so a link to ``/``
    adds one entry, not the file system. With ``follow_outside_files`` (the
    SDK's sourcedir.tar.gz) a link that leads out of ``src`` to a regular
    file is stored as that file and a dangling one is left out; a link to a
    directory outside is still only a link. Sockets, FIFOs and devices are
    left out.
    """
    root = os.path.realpath(src)

    def walk(directory: str, prefix: str):
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise ClientError(f"cannot read {directory} to pack it: {exc.strerror}.") from None
        for name in names:
            path = os.path.join(directory, name)
            arcname = f"{prefix}{name}"
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                target = os.readlink(path)
                lexical = os.path.normpath(os.path.join(os.path.dirname(arcname) or ".", target))
                escapes = target.startswith("/") or lexical == ".." or lexical.startswith("../")
                if not follow_outside_files or (not escapes and _inside(real, root)):
                    yield arcname, path, "link"
                elif os.path.isfile(real):
                    yield arcname, real, "file"
                elif os.path.exists(real):
                    yield arcname, path, "link"
            elif stat.S_ISDIR(st.st_mode):
                yield arcname, path, "dir"
                yield from walk(path, arcname + "/")
            elif stat.S_ISREG(st.st_mode):
                yield arcname, path, "file"

    yield from walk(src, "")


def pack_directory(src_dir: str, archive_path: str, *, follow_outside_files: bool = True) -> str:
    """Write ``archive_path``: a .tar.gz of the contents of ``src_dir`` at the
    archive's root (``train.py``, ``lib/util.py``), in sorted order, without
    owners, setuid/setgid/sticky bits or hard links. The archive appears only
    when complete. Returns ``archive_path``. Links: see :func:`_entries`
    (``follow_outside_files=False`` for what a job wrote, such as its model)."""
    if not os.path.isdir(src_dir):
        raise ClientError(f"cannot pack {src_dir}: it is not a directory.")
    archive_path = os.path.abspath(archive_path)
    directory = os.path.dirname(archive_path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(archive_path)}.", suffix=".tmp", dir=directory)
    skip = {os.path.realpath(archive_path), os.path.realpath(tmp)}
    try:
        with os.fdopen(fd, "wb") as raw:
            import gzip  # noqa: PLC0415 - only when packing

            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    for arcname, path, kind in _entries(src_dir, follow_outside_files):
                        if os.path.realpath(path) in skip and kind == "file":
                            continue
                        _add(tar, arcname, path, kind)
        os.chmod(tmp, 0o644)
        os.replace(tmp, archive_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return archive_path


def _add(tar: tarfile.TarFile, arcname: str, path: str, kind: str) -> None:
    info = tarfile.TarInfo(arcname)
    st = os.lstat(path) if kind == "link" else os.stat(path)
    info.mtime = int(st.st_mtime)
    info.mode = stat.S_IMODE(st.st_mode) & 0o777
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif kind == "link":
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
        tar.addfile(info)
    else:
        info.size = st.st_size
        with open(path, "rb") as f:
            tar.addfile(info, f)
