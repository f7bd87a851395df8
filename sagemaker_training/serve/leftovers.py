"""What a SIGKILLed server's jobs left running, found and ended at the next start.

A job's process dies with the server (the exec guard's PDEATHSIG), and its
hosts with it; but a process that a training script started in a session of
its own (``setsid``, a daemon) is no one's child any more and would run on.
So every job's process gets a token of its own in ``SAGEMAKER_SUPERVISORS``
(supervision/orphans.py: every descendant inherits it), recorded in
``jobs/<name>/supervisor-token`` (0600) before the process starts. At start-up,
holding the state dir's lock, the server ends (SIGTERM, then SIGKILL) every
process of its user that carries one of the recorded tokens
(orphans.end_carriers), and forgets the tokens. A token is random: no process
outside this state dir's jobs carries it.
"""

from __future__ import annotations

import glob
import os

from ..supervision import orphans
from .statedir import write_private

TOKEN_FILE = "supervisor-token"


def tag(job_dir: str, environ: dict) -> dict:
    """The environment of a job's process: ``environ`` with a new token, recorded in ``job_dir``."""
    token = f"serve-{orphans.new_token()}"
    write_private(os.path.join(job_dir, TOKEN_FILE), token)
    return {**environ, orphans.TOKEN_ENV: orphans.tagged(environ.get(orphans.TOKEN_ENV), token)}


def sweep(jobs_dir: str) -> list[int]:
    """End what the jobs of ``jobs_dir`` left running; the pids that were ended."""
    files = glob.glob(os.path.join(glob.escape(jobs_dir), "*", TOKEN_FILE))
    tokens = set()
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                tokens.add(f.read().strip())
        except OSError:
            continue
    ended = orphans.end_carriers({t for t in tokens if t})
    for path in files:
        try:
            os.unlink(path)
        except OSError:
            pass
    return ended
