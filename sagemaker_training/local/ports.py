"""Ports on this machine: free ones found, and a job's block reserved while its hosts run.

:func:`free_port_block` finds consecutive ports that are free now (the one
finder: local mode's hosts, serve's embedded S3, tests); :func:`reserve_port_block`
also holds them against every other job on this machine, a lock file per port
(:mod:`.locks`), until :meth:`PortBlock.release` or the holder's end. Which
port of a block a host's server takes is
:func:`sagemaker_training.host.distributed.packed_ports_environ`'s rule.
"""

from __future__ import annotations

import os
import socket
import tempfile

from . import locks


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def free_port_block(size: int, attempts: int = 200) -> int:
    """A base port such that ``base .. base+size-1`` are all free now (nothing reserves them)."""
    for _ in range(attempts):
        base = _os_chosen_port()
        if base + size < 65535 and all(_port_is_free(base + i) for i in range(size)):
            return base
    raise RuntimeError(f"no block of {size} free ports found")


def _os_chosen_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return s.getsockname()[1]


class PortBlock:
    """Ports ``base .. base+size-1``, reserved on this machine until :meth:`release`
    (or until the process that holds them ends): one lock file per port."""

    def __init__(self, base: int, size: int, held: list):
        self.base, self.size, self._held = base, size, held

    @property
    def ports(self) -> range:
        return range(self.base, self.base + self.size)

    def release(self) -> None:
        while self._held:
            locks.release(*self._held.pop())


def port_lock_dir() -> str:
    """Where every job on this machine reserves its ports (local mode's and serve's alike)."""
    return os.path.join(tempfile.gettempdir(), f"sagemaker-training-ports-{os.getuid()}")


def reserve_port_block(size: int, candidates=None, attempts: int = 200, lock_dir: str | None = None) -> PortBlock:
    """A block of ``size`` ports that are free now and that no other job holds:
    each port's lock file (under :func:`port_lock_dir`) is flock()ed for as
    long as the block is held, so two jobs starting at once, in separate
    processes, never get overlapping blocks. ``candidates``: the base ports to
    try, in order (default: ones the OS chooses)."""
    lock_dir = lock_dir or port_lock_dir()
    bases = iter(candidates) if candidates is not None else (_os_chosen_port() for _ in range(attempts))
    for base in bases:
        if base + size >= 65535:
            continue
        held = []
        try:
            for port in range(base, base + size):
                path = os.path.join(lock_dir, f"{port}.lock")
                held.append((locks.acquire(path, "held"), path))
        except locks.Busy:  # another job holds one of them
            PortBlock(base, size, held).release()
            continue
        block = PortBlock(base, size, held)
        if all(_port_is_free(port) for port in block.ports):
            return block
        block.release()
    raise RuntimeError(f"no block of {size} free ports found that no other job holds")
