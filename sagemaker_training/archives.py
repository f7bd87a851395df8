"""Tarballs in and out, with an explicit safety policy.

``extract_tarball`` unpacks an archive the user handed us (the SDK's
``sourcedir.tar.gz``) under a policy in the spirit of PEP 706's ``data``
filter, written out here so that it does not depend on the Python version:

* allowed: regular files, directories, and symbolic links whose target stays
  inside the destination (relative, no way out through ``..`` or through
  other links in the archive);
* refused: absolute member names, names with a ``..`` component, links that
  leave the destination, every hard link, character and block devices, FIFOs
  and any other special member, and anything that is not a readable
  tar/gzip/bzip2/xz archive (corrupt or truncated ones included);
* permissions: the rwx bits are kept (the owner always gets read and write,
  group and others never get write), setuid, setgid and sticky bits are
  dropped, and ownership is never applied.

Every member is checked before anything is written; the archive is then
unpacked into a staging directory beside the destination, which replaces the
destination only once everything is in place (:func:`staged_directory`), so a
refused or broken archive leaves the destination as it was.

``pack_directory`` writes the other direction: a ``.tar.gz`` of a directory's
contents, as the SageMaker SDK packs ``sourcedir.tar.gz`` and the platform
packs ``model.tar.gz``.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import stat
import tarfile
import tempfile
import zlib

from .errors import ClientError

_MAX_LINK_HOPS = 40
_REPACK_HINT = "repack the code without it (e.g. tar -czf sourcedir.tar.gz -C <source dir> .) and upload it again"
_FILE_MODE_KEEP = 0o755  # rwx for the owner, r-x for group and others; never write for group/others
_CHUNK = 1024 * 1024


# --------------------------------------------------------------------------
# Staging: build a directory beside its destination, then swap it in


def _staging_parent(dest: str) -> tuple[str, bool]:
    """Where the staging directory goes: beside ``dest`` when its parent is
    writable (the usual case), else inside ``dest`` itself."""
    parent = os.path.dirname(dest)
    os.makedirs(parent, exist_ok=True)
    if os.access(parent, os.W_OK | os.X_OK):
        return parent, False
    os.makedirs(dest, exist_ok=True)
    return dest, True


def _clear_directory(path: str, keep: str | None = None) -> None:
    for name in os.listdir(path):
        entry = os.path.join(path, name)
        if keep is not None and entry == keep:
            continue
        if os.path.isdir(entry) and not os.path.islink(entry):
            shutil.rmtree(entry)
        else:
            os.unlink(entry)


def _move_contents(src: str, dest: str) -> None:
    for name in os.listdir(src):
        shutil.move(os.path.join(src, name), os.path.join(dest, name))


def _install(staged: str, dest: str, inside: bool) -> None:
    """Make ``dest`` hold exactly what ``staged`` holds."""
    if inside:  # no room beside dest: replace its entries one by one
        _clear_directory(dest, keep=staged)
        _move_contents(staged, dest)
        os.rmdir(staged)
        return
    if not os.path.lexists(dest):
        os.rename(staged, dest)
        return
    if not os.path.isdir(dest):
        raise ClientError(f"{dest} exists and is not a directory: remove it or choose another destination.")
    graveyard = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.old-", dir=os.path.dirname(dest))
    try:
        try:
            os.rename(dest, os.path.join(graveyard, "old"))
        except OSError as exc:
            if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EACCES, errno.EPERM):
                raise
            # dest is a mount point or cannot be renamed: swap its contents instead
            _clear_directory(dest)
            _move_contents(staged, dest)
            os.rmdir(staged)
            return
        try:
            os.rename(staged, dest)
        except OSError:
            os.rename(os.path.join(graveyard, "old"), dest)
            raise
    finally:
        shutil.rmtree(graveyard, ignore_errors=True)


@contextlib.contextmanager
def staged_directory(dest_dir: str):
    """Yield an empty staging directory; on a clean exit it becomes ``dest_dir``.

    The previous content of ``dest_dir`` is replaced only when the block
    completes; if it raises, the staging directory is removed and ``dest_dir``
    is left untouched. A symlinked ``dest_dir`` is resolved first, so the link
    keeps pointing where it did.
    """
    dest = os.path.abspath(dest_dir)
    if os.path.islink(dest):
        dest = os.path.realpath(dest)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise ClientError(f"{dest} exists and is not a directory: remove it or choose another destination.")
    mode = stat.S_IMODE(os.stat(dest).st_mode) if os.path.isdir(dest) else 0o755
    parent, inside = _staging_parent(dest)
    staged = tempfile.mkdtemp(prefix=f".{os.path.basename(dest)}.staging-", dir=parent)
    try:
        os.chmod(staged, mode)  # mkdtemp's 0700 would otherwise become the destination's mode
        yield staged
        _install(staged, dest, inside)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


# --------------------------------------------------------------------------
# The policy


class _Refused(Exception):
    """A member the policy refuses; turned into a ClientError naming the archive."""

    def __init__(self, member: str, why: str):
        super().__init__(why)
        self.member = member
        self.why = why


def _member_parts(name: str) -> list[str]:
    """The path components of a member name, or _Refused for unsafe ones."""
    if not name or "\x00" in name:
        raise _Refused(name, "has an empty or invalid name")
    if name.startswith("/"):
        raise _Refused(name, "has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _Refused(name, "has a '..' component")
    return parts


class _Policy:
    """Checks members in archive order, tracking the symlinks they create.

    Paths are resolved as the kernel would resolve them in the extracted
    tree (following the archive's own symlinks), so a chain of links that are
    each harmless on their own cannot lead out either.
    """

    def __init__(self):
        self.links: dict[tuple, str] = {}  # resolved location of a symlink -> its target
        self.kinds: dict[tuple, str] = {}  # resolved location of a file or directory -> "file" / "dir"

    def _resolve(self, parts, member: str) -> tuple:
        resolved: list[str] = []
        pending = list(reversed(parts))
        hops = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise _Refused(member, "leads outside the destination through a symbolic link")
                resolved.pop()
                continue
            candidate = (*resolved, part)
            target = self.links.get(candidate)
            if target is None:
                resolved.append(part)
                continue
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise _Refused(member, "is part of a symbolic link loop")
            pending.extend(reversed(target.split("/")))
        return tuple(resolved)

    def check(self, member: tarfile.TarInfo) -> tuple | None:
        """The member's resolved location, or None for the archive's root entry."""
        name = member.name
        parts = _member_parts(name)
        if member.islnk():
            raise _Refused(name, f"is a hard link to {member.linkname!r} (hard links are not allowed)")
        if member.ischr() or member.isblk():
            raise _Refused(name, "is a device file")
        if member.isfifo():
            raise _Refused(name, "is a FIFO")
        if not (member.isreg() or member.isdir() or member.issym()):
            raise _Refused(name, f"is a special file (tar type {member.type!r})")
        if not parts:
            if member.isdir():
                return None  # "./": the destination itself
            raise _Refused(name, "has no file name")
        parent = self._resolve(parts[:-1], name)
        for depth in range(1, len(parent) + 1):
            if self.kinds.get(parent[:depth]) == "file":
                raise _Refused(name, f"is inside {'/'.join(parent[:depth])!r}, which the archive made a file")
            self.kinds[parent[:depth]] = "dir"
        location = (*parent, parts[-1])
        if not member.isdir() and self.kinds.get(location) == "dir":
            raise _Refused(name, "replaces a directory of the same name")
        if member.issym():
            target = member.linkname
            if not target:
                raise _Refused(name, "is a symbolic link with an empty target")
            if target.startswith("/"):
                raise _Refused(name, f"is a symbolic link to the absolute path {target!r}")
            lexical = os.path.normpath(os.path.join(os.path.dirname("/".join(parts)) or ".", target))
            if lexical == ".." or lexical.startswith("../"):
                raise _Refused(name, f"is a symbolic link to {target!r}, outside the destination")
            self.kinds.pop(location, None)
            self.links[location] = target
            self._resolve(location, name)
        else:
            self.links.pop(location, None)
            self.kinds[location] = "dir" if member.isdir() else "file"
        return location

    def check_final(self) -> None:
        """Every link, resolved against the tree as the archive leaves it."""
        for location in list(self.links):
            self._resolve(location, "/".join(location))


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


def _refused(label: str, refusal: _Refused) -> ClientError:
    return ClientError(f"refusing to extract {label}: member {refusal.member!r} {refusal.why}; {_REPACK_HINT}")


def _validate(archive_path: str, label: str) -> None:
    """Pass one: read every header (and all the compressed data) without writing."""
    policy = _Policy()
    with _open(archive_path, label) as tar:
        try:
            for member in tar:
                policy.check(member)
            policy.check_final()
            # Reading to the end verifies the compressed stream's trailer and
            # shows truncation that falls after the last header.
            while tar.fileobj.read(_CHUNK):
                pass
        except _Refused as refusal:
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


def _remove_existing(path: str, member: str) -> None:
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
        os.unlink(path)
    elif os.path.isdir(path):
        raise _Refused(member, "replaces a directory of the same name")


def _file_mode(mode: int) -> int:
    return (mode & _FILE_MODE_KEEP) | 0o600


def _dir_mode(mode: int) -> int:
    return (mode & _FILE_MODE_KEEP) | 0o700


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, location: tuple, root: str, dirs: dict) -> None:
    path = os.path.join(root, *location)
    parent = os.path.dirname(path)
    # Defence in depth: the policy already resolved this path; check the real tree too.
    if not _inside(os.path.realpath(parent), root):
        raise _Refused(member.name, "leads outside the destination through a symbolic link")
    os.makedirs(parent, exist_ok=True)
    if member.isdir():
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            os.unlink(path)
        os.makedirs(path, exist_ok=True)
        dirs[path] = member
        return
    _remove_existing(path, member.name)
    if member.issym():
        os.symlink(member.linkname, path)
        if not _inside(os.path.realpath(path), root):
            os.unlink(path)
            raise _Refused(member.name, f"is a symbolic link to {member.linkname!r}, outside the destination")
        return
    source = tar.extractfile(member)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)
    os.chmod(path, _file_mode(member.mode))
    with contextlib.suppress(OSError, OverflowError, ValueError):
        os.utime(path, (member.mtime, member.mtime))


def _finish_dirs(dirs: dict) -> None:
    """Directory modes and times last, deepest first, so that a read-only
    directory in the archive does not stop its own files being written."""
    for path in sorted(dirs, key=len, reverse=True):
        member = dirs[path]
        if os.path.islink(path):
            continue
        os.chmod(path, _dir_mode(member.mode))
        with contextlib.suppress(OSError, OverflowError, ValueError):
            os.utime(path, (member.mtime, member.mtime))


def extract_tarball(archive_path: str, dest_dir: str, *, display_name: str | None = None) -> None:
    """Unpack ``archive_path`` (tar, tar.gz, tar.bz2, tar.xz) so that
    ``dest_dir`` holds exactly its contents, under the module's policy.

    ``display_name`` is what error messages call the archive (an S3 URI for
    a downloaded temporary file); the path itself by default.
    """
    label = display_name or archive_path
    _validate(archive_path, label)
    with staged_directory(dest_dir) as staged:
        root = os.path.realpath(staged)
        policy = _Policy()
        dirs: dict = {}
        member = None
        with _open(archive_path, label) as tar:
            try:
                for member in tar:
                    location = policy.check(member)
                    if location is not None:
                        _extract_member(tar, member, location, root, dirs)
            except _Refused as refusal:
                raise _refused(label, refusal) from None
            except (tarfile.TarError, EOFError, zlib.error) as exc:
                raise _corrupt(label, exc) from None
            except OSError as exc:
                if exc.errno is None:  # gzip.BadGzipFile and the like: the data, not the disk
                    raise _corrupt(label, exc) from None
                where = f" member {member.name!r}" if member is not None else ""
                raise ClientError(
                    f"cannot extract{where} of {label} into {dest_dir}: {exc.strerror or exc}; "
                    "check the free disk space and the permissions there."
                ) from None
        _finish_dirs(dirs)


# --------------------------------------------------------------------------
# Packing


def _entries(src: str):
    """(archive name, path, kind) for everything under ``src``, sorted by name.

    Symbolic links that stay inside ``src`` are kept as links; links that lead
    outside it are stored as what they point to (as the SageMaker SDK does),
    and dangling outside links are left out. Sockets, FIFOs and devices are
    left out.
    """
    root = os.path.realpath(src)
    seen_dirs = {root}

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
                target = os.readlink(path)
                lexical = os.path.normpath(os.path.join(os.path.dirname(arcname) or ".", target))
                real = os.path.realpath(path)
                escapes = target.startswith("/") or lexical == ".." or lexical.startswith("../")
                if not escapes and _inside(real, root):
                    yield arcname, path, "link"
                    continue
                if not os.path.exists(path):
                    continue
                st = os.stat(path)
                path = real
            if stat.S_ISDIR(st.st_mode):
                real = os.path.realpath(path)
                if real in seen_dirs and os.path.islink(os.path.join(directory, name)):
                    continue  # a link back up the tree: stop the cycle
                seen_dirs.add(real)
                yield arcname, path, "dir"
                yield from walk(path, arcname + "/")
            elif stat.S_ISREG(st.st_mode):
                yield arcname, path, "file"

    yield from walk(src, "")


def pack_directory(src_dir: str, archive_path: str) -> str:
    """Write ``archive_path``: a .tar.gz of the contents of ``src_dir`` at the
    archive's root (``train.py``, ``lib/util.py``), in sorted order, without
    owners, setuid/setgid/sticky bits or hard links. The archive appears only
    when complete. Returns ``archive_path``."""
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
                    for arcname, path, kind in _entries(src_dir):
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
