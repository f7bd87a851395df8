"""The first host of an MPI job: ``python -m sagemaker_training.mpi.launch -- MPIRUN ARGV...``.

1. Waits, at most ``SAGEMAKER_MPI_LAUNCH_WAIT_SECONDS``, until every other
   host can take the launch (its worker's socket in local mode, its sshd's
   port in containers); a host that never does fails the job naming it.
2. Runs mpirun as its child, passing SIGTERM/SIGINT on (mpirun passes them
   to every rank), its output through, and reads the failure markers the
   ranks (:mod:`.rank`) leave in mpirun's stderr.
3. When mpirun fails, leaves the failure reason of the first rank that
   failed (host, rank, its last stderr lines) in the failure file of its
   plan (``<state dir>/failure``), or mpirun's own when no rank failed.
4. Tells every other host the verdict (a file in local mode, over SSH in
   containers), so that every host fails when the job does.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time

from .. import mpi
from ..environment import Environment
from ..errors import error_record_from_json
from ..supervision import streams
from ..supervision.failures import exception_from_stderr
from .rank import MARKER, cause_first, exit_status, failure_text, start_forwarding
from .worker import write_verdict

TAIL_LINES = 40
# mpirun's stderr is read in pieces of this many characters: room for a failed rank's marker line
# (its record, with up to rank.TAIL_LINES lines of streams.TAIL_LINE_CHARS, JSON-escaped) in one
MARKER_LINE_CHARS = 4 * 64 * 1024
OUTPUT_DRAIN_SECONDS = 3.0
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
               "-o", "ConnectTimeout=10", "-o", "BatchMode=yes"]


def _reachable(host: str, rendezvous: str | None) -> bool:
    if rendezvous:
        family, where = socket.AF_UNIX, mpi.socket_path(rendezvous, host)
        if not os.path.exists(where):
            return False
    else:
        family, where = socket.AF_INET, (host, mpi.SSH_PORT)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            probe.connect(where)
        return True
    except OSError:
        return False


def wait_for_hosts(hosts, rendezvous: str | None, wait: float) -> str | None:
    """The first host that is still not ready after ``wait`` seconds, or None."""
    deadline = time.monotonic() + wait
    waiting = list(hosts)
    while waiting:
        waiting = [host for host in waiting if not _reachable(host, rendezvous)]
        if waiting and time.monotonic() >= deadline:
            return waiting[0]
        if waiting:
            time.sleep(0.2)
    return None


def tell_hosts(hosts, rendezvous: str | None, verdict: dict) -> None:
    """Leave the verdict on every other host (best effort, bounded)."""
    for host in hosts:
        if rendezvous:
            try:
                write_verdict(mpi.state_dir(host, {mpi.RENDEZVOUS_ENV: rendezvous}), verdict)
            except OSError:
                pass
            continue
        remote = f"{shlex.quote(sys.executable)} -m sagemaker_training.mpi.worker --verdict " \
                 f"{shlex.quote(json.dumps(verdict))}"
        try:
            subprocess.run(["ssh", *SSH_OPTIONS, host, remote], stdin=subprocess.DEVNULL, timeout=30,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        except (OSError, subprocess.TimeoutExpired):
            pass


def run_mpirun(command: list) -> tuple[int, list, list]:
    """(exit code, failed-rank records, mpirun's stderr tail)."""
    child, _ = start_forwarding(command)
    failed, tail = [], streams.Tail(TAIL_LINES)

    def read():
        in_line = False  # a long line comes in pieces: only a whole line can be a marker
        for text, end_of_line in streams.pieces(child.stderr, MARKER_LINE_CHARS):
            at = -1 if in_line else text.find(MARKER)
            in_line = not end_of_line
            record = error_record_from_json(text[at + len(MARKER):]) if at >= 0 and end_of_line else None
            if record is not None:
                failed.append(record)
                continue
            sys.stderr.write(f"{text}\n" if end_of_line else text)
            sys.stderr.flush()
            tail.take(text, end_of_line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    code = child.wait()
    # An agent mpirun started may outlive it and hold the pipe: the rest of the output gets a bounded time.
    reader.join(timeout=OUTPUT_DRAIN_SECONDS)
    return code, sorted(failed, key=cause_first), tail.lines()


def mpirun_failure(code: int, tail: list) -> str:
    exception = exception_from_stderr([line.split(": ", 1)[-1] for line in tail])
    head = f"UserError: mpirun exited with code {code}" + (f": {exception}" if exception else "")
    return head + ". Fix the training code or the MPI options; mpirun's last stderr lines follow.\n\n" + \
        "\n".join(tail) + "\n"


def main(command: list) -> int:
    env = Environment()
    others = env.hosts[1:]
    rendezvous = mpi.rendezvous_dir()
    failure_file = os.path.join(mpi.state_dir(env.current_host), "failure")
    wait = mpi.launch_wait_seconds()
    missing = wait_for_hosts(others, rendezvous, wait)
    if missing is not None:
        how = "its worker's socket" if rendezvous else f"port {mpi.SSH_PORT} (sshd)"
        text = (f"PlatformError: host {missing} did not get ready for the MPI launch within {wait:g}s (nothing "
                f"answered on {how}); it may have failed to start (its own failure says why). "
                f"{mpi.LAUNCH_WAIT_ENV} sets the bound.\n")
        code = 1
    else:
        sys.stderr.write(f"sagemaker_training: {' '.join(shlex.quote(word) for word in command)}\n")
        sys.stderr.flush()
        code, failed, tail = run_mpirun(command)
        if code == 0:
            tell_hosts(others, rendezvous, {"ok": True})
            return 0
        text = failure_text(failed[0]) if failed else mpirun_failure(code, tail)
        if failed:
            code = exit_status(failed[0])
    with open(failure_file, "w", encoding="utf-8") as f:
        f.write(text)
    tell_hosts(others, rendezvous, {"ok": False, "reason": text, "exit_code": code})
    return code


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[1:] if args and args[0] == "--" else args))
