"""Start a program that the kernel kills when the server dies.

``python -m sagemaker_training.serve.guard PARENT_PID PROGRAM ARGS...`` asks
for SIGKILL on its parent's death (``PR_SET_PDEATHSIG``, which survives the
exec), checks that the parent is still the one it was started by (it may
have died in between), then becomes PROGRAM. The server starts the embedded
S3 and every job's process this way, without ``preexec_fn`` (unsafe in a
threaded program), so a server killed with SIGKILL leaves nothing running.
The kernel sends the signal when the *thread* that started the program
ends, so the thread that starts one must outlive it (scheduler.py's does).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def argv(program: list[str]) -> list[str]:
    """The command line that runs ``program`` under the guard of this process."""
    return [sys.executable, "-m", "sagemaker_training.serve.guard", str(os.getpid()), *program]


def main(args: list[str]) -> None:
    parent, program = int(args[0]), args[1:]
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit(f"sagemaker-training serve: the server ({parent}) is gone; not starting {program[0]}")
    os.execvp(program[0], program)


if __name__ == "__main__":
    main(sys.argv[1:])
