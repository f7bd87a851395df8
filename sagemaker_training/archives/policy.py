"""Which tar members ``archives.extract_tarball`` accepts, member by member.

:class:`Policy` checks members in archive order and refuses (with
:class:`Refused`, naming the member and why) absolute names, ``..``
components, links that lead out of the destination (alone or chained), hard
links, devices, FIFOs, GNU sparse files, names deeper than ``MAX_DEPTH``
directories, with a component over 255 bytes or a path over ``MAX_PATH_BYTES``
(room below the kernel's PATH_MAX of 4096 for the destination's own path), and file contents that add up
to more than ``SAGEMAKER_MAX_CODE_BYTES``, all from the headers, before
anything is written.
"""

from __future__ import annotations

import os
import tarfile

from ..core import settings

MAX_CODE_BYTES_ENV = "SAGEMAKER_MAX_CODE_BYTES"
DEFAULT_MAX_CODE_BYTES = 10 * 1024**3  # far above any real sourcedir.tar.gz, below a disk's worth
MAX_DEPTH = 256  # directories in one member name
_MAX_COMPONENT = 255  # bytes in one path component (NAME_MAX)
PATH_MAX = 4096  # bytes in a path the kernel takes, its final NUL included
MAX_PATH_BYTES = PATH_MAX - 512  # a member's path: the rest is room for the destination's own path
_SHOWN_NAME = 100  # characters of a member name in a message; longer ones are shortened in the middle
_MAX_LINK_HOPS = 40


def max_code_bytes() -> int:
    """The most an archive of code may expand to ($SAGEMAKER_MAX_CODE_BYTES)."""
    return settings.number(MAX_CODE_BYTES_ENV, DEFAULT_MAX_CODE_BYTES, integer=True, minimum=1)


class Refused(Exception):
    """A member the policy refuses; turned into a ClientError naming the archive."""

    def __init__(self, member: str, why: str):
        super().__init__(why)
        self.member = member
        self.why = why


def shown_name(name: str) -> str:
    """A member name for a message: quoted, and shortened in the middle when long,
    so that the cause after it still fits in the failure reason."""
    if len(name) <= _SHOWN_NAME:
        return repr(name)
    half = _SHOWN_NAME // 2
    return f"{name[:half]!r}...{name[-half:]!r} ({len(name)} characters)"


def member_parts(name: str) -> list[str]:
    """The path components of a member name, or Refused for unsafe ones."""
    if not name or "\x00" in name:
        raise Refused(name, "has an empty or invalid name")
    if name.startswith("/"):
        raise Refused(name, "has an absolute path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise Refused(name, "has a '..' component")
    if len(parts) > MAX_DEPTH:
        raise Refused(name, f"is {len(parts) - 1} directories deep (at most {MAX_DEPTH} are allowed)")
    sizes = [len(part.encode("utf-8", "surrogateescape")) for part in parts]
    if max(sizes, default=0) > _MAX_COMPONENT:
        raise Refused(name, f"has a path component of {max(sizes)} bytes (file systems allow {_MAX_COMPONENT})")
    total = sum(sizes) + len(sizes) - 1
    if total > MAX_PATH_BYTES:
        raise Refused(name, f"has a path of {total} bytes (at most {MAX_PATH_BYTES} are allowed, leaving room for "
                            f"the destination's own path below the kernel's limit of {PATH_MAX})")
    return parts


class Policy:
    """Checks members in archive order, tracking the symlinks they create.

    Paths are resolved as the kernel would resolve them in the extracted
    tree (following the archive's own symlinks), so a chain of links that are
    each harmless on their own cannot lead out either.
    """

    def __init__(self, max_bytes: int):
        self.links: dict[tuple, str] = {}  # resolved location of a symlink -> its target
        self.kinds: dict[tuple, str] = {}  # resolved location of a file or directory -> "file" / "dir"
        self.max_bytes = max_bytes
        self.total = 0  # bytes of file contents so far

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
                    raise Refused(member, "leads outside the destination through a symbolic link")
                resolved.pop()
                continue
            candidate = (*resolved, part)
            target = self.links.get(candidate)
            if target is None:
                resolved.append(part)
                continue
            hops += 1
            if hops > _MAX_LINK_HOPS:
                raise Refused(member, "is part of a symbolic link loop")
            pending.extend(reversed(target.split("/")))
        return tuple(resolved)

    def check(self, member: tarfile.TarInfo) -> tuple | None:
        """The member's resolved location, or None for the archive's root entry."""
        name = member.name
        parts = member_parts(name)
        if member.islnk():
            raise Refused(name, f"is a hard link to {member.linkname!r} (hard links are not allowed)")
        if member.issparse():
            raise Refused(name, f"is a GNU sparse file ({member.size} bytes expanded; sparse files are not allowed)")
        if member.ischr() or member.isblk():
            raise Refused(name, "is a device file")
        if member.isfifo():
            raise Refused(name, "is a FIFO")
        if not (member.isreg() or member.isdir() or member.issym()):
            raise Refused(name, f"is a special file (tar type {member.type!r})")
        if not parts:
            if member.isdir():
                return None  # "./": the destination itself
            raise Refused(name, "has no file name")
        if member.isreg():
            self.total += member.size
            if self.total > self.max_bytes:
                raise Refused(name, f"({member.size} bytes) takes the archive's contents to {self.total} bytes, "
                                     f"over the limit of {self.max_bytes} ({MAX_CODE_BYTES_ENV})")
        parent = self._resolve(parts[:-1], name)
        for depth in range(1, len(parent) + 1):
            if self.kinds.get(parent[:depth]) == "file":
                raise Refused(name, f"is inside {'/'.join(parent[:depth])!r}, which the archive made a file")
            self.kinds[parent[:depth]] = "dir"
        location = (*parent, parts[-1])
        if not member.isdir() and self.kinds.get(location) == "dir":
            raise Refused(name, "replaces a directory of the same name")
        if member.issym():
            target = member.linkname
            if not target:
                raise Refused(name, "is a symbolic link with an empty target")
            if target.startswith("/"):
                raise Refused(name, f"is a symbolic link to the absolute path {target!r}")
            lexical = os.path.normpath(os.path.join(os.path.dirname("/".join(parts)) or ".", target))
            if lexical == ".." or lexical.startswith("../"):
                raise Refused(name, f"is a symbolic link to {target!r}, outside the destination")
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
