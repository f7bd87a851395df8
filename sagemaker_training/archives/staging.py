"""Replace a directory all at once: build its new content beside it, then swap it in.

``staged_directory(dest)`` yields an empty staging directory; when the block
completes, the staging directory becomes ``dest`` (the old content goes only
then); when it raises, ``dest`` is left as it was. A destination that cannot
be renamed (a mount point) is refused, never emptied: its files are not ours;
one that only overlayfs cannot rename (a directory an image's layer made) has
its content replaced in place.
Discarding the old content never crosses into another file system or a mount
point (bind mounts included, read from ``/proc/self/mountinfo``): what is
mounted below is left where it is, with a warning.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

from ..core import logs
from ..errors import ClientError, lazy_pattern

def _mkdtemp(prefix: str, parent: str) -> str:
    """``tempfile.mkdtemp(prefix=prefix, dir=parent)`` without importing tempfile (random, bisect, ...)
    on every start: a new directory of mode 0700 with a random name."""
    while True:
        path = os.path.join(parent, f"{prefix}{os.urandom(6).hex()}")
        try:
            os.mkdir(path, 0o700)
            return os.path.abspath(path)
        except FileExistsError:
            continue


_OCTAL_ESCAPE = lazy_pattern(r"\\([0-7]{3})")


def mount_points() -> set:
    """Every mount point of this process's mount namespace (bind mounts included,
    which ``os.path.ismount`` misses on the same file system)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            fields = [line.split() for line in f.read().splitlines()]
    except OSError:
        return set()
    return {_unescape(parts[4]) for parts in fields if len(parts) > 4}


def _unescape(field: str) -> str:
    """A mountinfo path: ``\\040`` and the like (space, tab, newline, backslash) back to characters;
    the pattern is compiled only for a path that has one."""
    return _OCTAL_ESCAPE().sub(lambda m: chr(int(m.group(1), 8)), field) if "\\" in field else field


def _discard(path: str) -> None:
    """Remove the tree ``path`` without crossing into another file system or a
    mount point below it; whatever is mounted there is left, with a warning."""
    mounts = mount_points()
    try:
        device = os.lstat(path).st_dev
    except FileNotFoundError:
        return
    kept = [path] if os.path.realpath(path) in mounts else []

    def remove(directory: str) -> None:
        with os.scandir(directory) as entries:
            listed = list(entries)
        for entry in listed:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(entry.path)
            elif st.st_dev != device or os.path.realpath(entry.path) in mounts:
                kept.append(entry.path)
            else:
                remove(entry.path)
                if not any(k.startswith(entry.path + os.sep) for k in kept):
                    os.rmdir(entry.path)

    try:
        if not kept:
            remove(path)
        if not kept:
            os.rmdir(path)
    except OSError as exc:
        logs.get("staging").warning("could not remove all of %s: %s", path, exc.strerror or exc)
    for mount in kept:
        logs.get("staging").warning("left %s in place: it is a mount point, whose files are not ours to delete",
                                    mount)


def _holds_a_mount(path: str) -> bool:
    """Whether ``path`` is a mount point or has one anywhere below it."""
    real = os.path.realpath(path)
    return any(mount == real or mount.startswith(real + os.sep) for mount in mount_points())


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
            _discard(entry)
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
    graveyard = _mkdtemp(f".{os.path.basename(dest)}.old-", os.path.dirname(dest))
    try:
        try:
            os.rename(dest, os.path.join(graveyard, "old"))
        except OSError as exc:
            if exc.errno == errno.EXDEV and not _holds_a_mount(dest):
                # overlayfs (an image's layer) cannot rename a directory of a lower layer, but its
                # entries can go: the content is replaced in place, once the new content is complete
                logs.get("staging").info("%s cannot be renamed (a directory of an image layer): replacing "
                                         "its content in place", dest)
                _clear_directory(dest)
                left = os.listdir(dest)
                if left:  # never mix the new content into what could not be removed
                    raise ClientError(f"{dest} could not be emptied ({', '.join(sorted(left)[:5])} left): "
                                      "give another destination.") from None
                _move_contents(staged, dest)
                os.rmdir(staged)
                return
            if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EACCES, errno.EPERM):
                raise
            # a mount point, or not ours to rename: its files are someone else's, never emptied
            raise ClientError(f"{dest} cannot be replaced ({exc.strerror}; a mount point?): the toolkit does not "
                              "delete files it did not write; give another destination.") from None
        try:
            os.rename(staged, dest)
        except OSError:
            os.rename(os.path.join(graveyard, "old"), dest)
            raise
    finally:
        _discard(graveyard)


class staged_directory:  # noqa: N801 - used as a function: ``with staged_directory(dest) as staged:``
    """``with staged_directory(dest_dir) as staged:`` an empty staging directory; on a clean exit
    it becomes ``dest_dir``.

    The previous content of ``dest_dir`` is replaced only when the block
    completes; if it raises, the staging directory is removed and ``dest_dir``
    is left untouched. A symlinked ``dest_dir`` is resolved first, so the link
    keeps pointing where it did. (A class, not ``contextlib.contextmanager``:
    no contextlib import on every start.)
    """

    def __init__(self, dest_dir: str):
        self.dest_dir = dest_dir
        self.staged = self.dest = None
        self.inside = False

    def __enter__(self) -> str:
        dest = os.path.abspath(self.dest_dir)
        if os.path.islink(dest):
            dest = os.path.realpath(dest)
        if os.path.lexists(dest) and not os.path.isdir(dest):
            raise ClientError(f"{dest} exists and is not a directory: remove it or choose another destination.")
        mode = stat.S_IMODE(os.stat(dest).st_mode) if os.path.isdir(dest) else 0o755
        parent, self.inside = _staging_parent(dest)
        self.dest, self.staged = dest, _mkdtemp(f".{os.path.basename(dest)}.staging-", parent)
        try:
            os.chmod(self.staged, mode)  # mkdtemp's 0700 would otherwise become the destination's mode
        except BaseException:
            shutil.rmtree(self.staged, ignore_errors=True)
            raise
        return self.staged

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None:
            shutil.rmtree(self.staged, ignore_errors=True)
            return False
        try:
            _install(self.staged, self.dest, self.inside)
        except BaseException:
            shutil.rmtree(self.staged, ignore_errors=True)
            raise
        return False
