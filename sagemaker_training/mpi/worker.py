"""An MPI job's other hosts: wait for the launch, end when it ends.

``python -m sagemaker_training.mpi.worker`` is the only child a host other
than the first runs in an MPI job (see :mod:`sagemaker_training.mpi`). It

1. makes the launch possible: in local mode it listens on
   ``<SAGEMAKER_MPI_RENDEZVOUS_DIR>/<host>.sock`` for :mod:`.agent`; in a
   container it starts ``sshd`` as its own child (host keys are made now
   when the image has none; the client key that the first host uses must
   be in the image, authorized for root, as in the platform's images);
2. waits at most ``SAGEMAKER_MPI_LAUNCH_WAIT_SECONDS`` for the MPI daemon to
   arrive (a launch that will never come, because the first host failed
   before it, fails this host naming the first host and the setting);
3. waits for the daemon to end (mpirun ends it, or its connection to the
   first host breaks) or for the first host's verdict that the job failed
   (then it ends the daemon itself: nothing here waits for a dead job),
   giving the verdict up to ``SAGEMAKER_MPI_VERDICT_WAIT_SECONDS`` after
   the daemon's end;
4. exits 0 when the job succeeded, or leaves a failure reason (the
   verdict's: the job's first failed rank, host and stderr; without a
   verdict, this host's first failed rank or the abort) and exits 1.

On SIGTERM (the job stopped) the daemon's processes get SIGTERM, so the
ranks can save their state while mpirun on the first host ends the job.

``worker --verdict JSON`` is how the first host leaves its verdict here
over SSH.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from .. import mpi
from ..core import guarded_json
from ..environment import Environment
from .agent import kill_tree
from .rank import exit_status, failure_text, read_records

DAEMON_NAMES = ("prted", "orted")
POLL_SECONDS = 0.2


class Failed(Exception):
    """This host's failure reason, a finished text, and the exit code to end with."""

    def __init__(self, text: str, exit_code: int = 1):
        super().__init__(text)
        self.exit_code = exit_code


def verdict_path(state: str) -> str:
    return os.path.join(state, "verdict.json")


def write_verdict(state: str, verdict: dict) -> None:
    os.makedirs(state, exist_ok=True)
    tmp = verdict_path(state) + f".{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(verdict, f)
    os.replace(tmp, verdict_path(state))


VERDICT_MAX_BYTES = 4 << 20  # the first host's verdict file: a few lines of JSON


def read_verdict(state: str, wait: float) -> dict | None:
    deadline = time.monotonic() + wait
    while True:
        try:
            with open(verdict_path(state), encoding="utf-8") as f:
                return guarded_json.loads(f.read(VERDICT_MAX_BYTES))
        except (OSError, ValueError, guarded_json.TooDeep):
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


def _no_launch(first: str, wait: float, how: str) -> Failed:
    return Failed(f"PlatformError: no MPI launch from {first} reached this host within {wait:g}s ({how}); "
                  f"{first} may have failed before starting mpirun (its own failure says why). "
                  f"{mpi.LAUNCH_WAIT_ENV} sets the bound.\n")


class Launch:
    """The MPI daemon that reached this host: ``done()`` once it ended, ``stop()`` ends it early."""

    def __init__(self, done, stop, code=lambda: 0, close=lambda: None):
        self.done, self.stop, self.code, self.close = done, stop, code, close


def wait_local(env, rendezvous: str, wait: float) -> Launch:
    """Serve the agent's launch on the host's socket, until the daemon has started."""
    from .agent import serve_launch  # noqa: PLC0415

    path = mpi.socket_path(rendezvous, env.current_host)
    if len(path.encode()) > 100:
        raise Failed(f"ClientError: the local-mode rendezvous socket path {path} is too long for a unix socket: "
                     f"use a shorter work directory ({mpi.RENDEZVOUS_ENV}).\n")
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    os.makedirs(rendezvous, mode=0o700, exist_ok=True)
    os.chmod(rendezvous, 0o700)  # whoever reaches the socket runs commands as this job
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(8)
    daemons, codes = [], []
    started = threading.Event()

    def close():
        listener.close()
        try:
            os.remove(path)
        except FileNotFoundError:
            pass

    def stop(signum=signal.SIGKILL):
        for process in daemons:
            kill_tree(process.pid, signum)

    def on_start(process):
        daemons.append(process)
        started.set()

    def handle(conn):
        with conn:
            code = serve_launch(conn, env.current_host, dict(os.environ), rendezvous, on_start)
            if code is not None:
                codes.append(code)

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    if not started.wait(wait):
        close()
        raise _no_launch(env.hosts[0], wait, f"nothing connected to {path}")
    return Launch(done=lambda: bool(codes), stop=stop, code=lambda: codes[0] if codes else -9, close=close)


def start_sshd(environ=None) -> subprocess.Popen:
    """sshd in the foreground as this process's child, with host keys made now if the image has none."""
    import shutil  # noqa: PLC0415

    sshd = shutil.which("sshd", path=os.pathsep.join(["/usr/sbin", "/usr/local/sbin", os.environ.get("PATH", "")]))
    keygen = shutil.which("ssh-keygen")
    if not sshd or not keygen:
        raise Failed("ToolkitError: an MPI job on several hosts needs sshd and ssh-keygen in the image "
                     "(Debian's openssh-server and openssh-client); the image has none.\n")
    subprocess.run([keygen, "-A"], check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    return subprocess.Popen([sshd, "-D", "-e", "-p", str(mpi.SSH_PORT)], stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _daemons_under(process) -> list:
    import psutil  # noqa: PLC0415

    found = []
    try:
        for child in psutil.Process(process.pid).children(recursive=True):
            try:
                if child.name() in DAEMON_NAMES and child.status() != psutil.STATUS_ZOMBIE:
                    found.append(child)
            except psutil.NoSuchProcess:
                pass
    except psutil.NoSuchProcess:
        pass
    return found


def wait_ssh(env, sshd, wait: float) -> Launch:
    """Watch sshd's sessions until the MPI daemon has arrived (its exit code is not seen: 0)."""
    deadline = time.monotonic() + wait
    while not _daemons_under(sshd):
        if sshd.poll() is not None:
            raise Failed(f"ToolkitError: sshd ended with code {sshd.returncode} before the MPI launch from "
                         f"{env.hosts[0]} arrived; its log is above.\n")
        if time.monotonic() >= deadline:
            raise _no_launch(env.hosts[0], wait, "no MPI daemon was started through sshd")
        time.sleep(POLL_SECONDS)

    def stop(signum=signal.SIGKILL):
        for daemon in _daemons_under(sshd):
            kill_tree(daemon.pid, signum)

    return Launch(done=lambda: not _daemons_under(sshd), stop=stop)


def follow(launch: Launch, state: str, verdict_wait: float) -> tuple[int, dict | None]:
    """Until the daemon ends, or the first host's verdict says the job failed; (daemon's code, verdict)."""
    verdict = None
    while not launch.done():
        verdict = read_verdict(state, 0)
        if verdict is not None and not verdict.get("ok"):
            launch.stop()  # the job failed elsewhere: what still runs here would wait for it forever
            return launch.code(), verdict
        time.sleep(POLL_SECONDS)
    return launch.code(), verdict or read_verdict(state, verdict_wait)


def decide(env, state: str, daemon_code: int, verdict: dict | None) -> None:
    """Raise Failed unless the job succeeded: the first host's verdict names the job's first failed rank;
    without one, this host's own first failed rank, or the abort."""
    first = env.hosts[0]
    if verdict is not None and not verdict.get("ok"):
        code = verdict.get("exit_code")
        raise Failed(str(verdict.get("reason") or f"UserError: the MPI job launched from {first} failed.\n"),
                     code if isinstance(code, int) and code > 0 else 1)
    records = read_records(state)
    failed = [r for r in records if r.get("failed")]
    if failed:
        raise Failed(failure_text(failed[0]), exit_status(failed[0]))
    if verdict is None and (daemon_code != 0 or any(r.get("exit_code") != 0 for r in records)):
        raise Failed(f"UserError: the MPI job launched from {first} was aborted (this host's MPI daemon exited "
                     f"with code {daemon_code}) and no verdict came from {first}: its failure says why.\n")


def run(environ=None) -> int:
    environ = os.environ if environ is None else environ
    env = Environment(None, environ)
    state = mpi.state_dir(env.current_host, environ)
    failure_file = os.path.join(state, "failure")
    launches: list = []
    cleanups: list = []

    def on_signal(signum, frame):
        if not launches:  # nothing arrived to stop gracefully
            for cleanup in cleanups:
                cleanup()
            os._exit(128 + signum)
        launches[0].stop(signal.SIGTERM)  # the ranks may save their state; the supervisor's grace bounds it

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    sshd = None
    try:
        wait = mpi.launch_wait_seconds(environ)
        rendezvous = mpi.rendezvous_dir(environ)
        if rendezvous:
            launch = wait_local(env, rendezvous, wait)
        else:
            sshd = start_sshd(environ)
            cleanups.append(lambda: kill_tree(sshd.pid))
            launch = wait_ssh(env, sshd, wait)
        launches.append(launch)
        try:
            code, verdict = follow(launch, state, mpi.verdict_wait_seconds(environ))
        finally:
            launch.close()
        decide(env, state, code, verdict)
        return 0
    except Failed as exc:
        with open(failure_file, "w", encoding="utf-8") as f:
            f.write(str(exc))
        sys.stderr.write(f"sagemaker_training: {str(exc).splitlines()[0]}\n")
        return exc.exit_code
    finally:
        if sshd is not None:
            sshd.terminate()
            try:
                sshd.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill_tree(sshd.pid)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--verdict"]:
        write_verdict(mpi.state_dir(Environment().current_host), json.loads(sys.argv[2]))
        sys.exit(0)
    sys.exit(run())
