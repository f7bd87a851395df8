"""Local mode's launch agent: mpirun reaches the other hosts with no SSH.

mpirun on the first host is given ``--mca plm_rsh_agent "python -m
sagemaker_training.mpi.agent"`` and calls it as it would call ``ssh``:
``agent HOST COMMAND...``. The agent

* for a host that is not its own, connects to the unix socket
  ``<SAGEMAKER_MPI_RENDEZVOUS_DIR>/<HOST>.sock``, where that host's worker
  (:mod:`.worker`, a child of the host's own ``train``) listens, and sends
  the command; the worker starts it (:func:`start_daemon`) as its own child
  and answers with its exit code when it ends, which the agent exits with,
  as ``ssh`` does. When the agent dies (mpirun ended or was killed) the
  connection closes and the worker ends the daemon: nothing outlives the
  launch;
* for its own host, starts the command itself in the same way.

:func:`start_daemon` runs the command with ``/bin/sh -c`` (as sshd would)
through ``agent --become HOST``, which first enters a new UTS namespace
named after the host and points ``TMPDIR`` at a directory of that host:
OpenMPI tells nodes apart by host name, and its daemons keep their session
files under the temporary directory, so several hosts on one machine stay
separate. That needs root (or CAP_SYS_ADMIN), as local mode's hosts run
here; without it the launch fails with a line that says so.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

from . import AGENT_MODULE, rendezvous_dir, socket_path

CLONE_NEWUTS = 0x04000000
# A launch request is one JSON line: mpirun's daemon command, itself bounded by the kernel's argument limit.
MAX_MESSAGE_BYTES = 4 << 20
NO_NAMESPACE_EXIT = 126


def host_tmp_dir(rendezvous: str, host: str) -> str:
    path = os.path.join(rendezvous, host, "tmp")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def start_daemon(host: str, command: str, environ: dict, rendezvous: str, **popen) -> subprocess.Popen:
    """``/bin/sh -c COMMAND`` as ``host`` (its own UTS namespace and TMPDIR), in a new session."""
    environ = dict(environ)
    environ["TMPDIR"] = host_tmp_dir(rendezvous, host)
    argv = [sys.executable, "-m", AGENT_MODULE, "--become", host, "/bin/sh", "-c", command]
    return subprocess.Popen(argv, env=environ, stdin=subprocess.DEVNULL, start_new_session=True, **popen)


def become(host: str, argv: list) -> None:
    """Enter a UTS namespace named ``host``, then exec ``argv``."""
    import ctypes  # noqa: PLC0415

    libc = ctypes.CDLL(None, use_errno=True)
    name = host.encode()
    if libc.unshare(CLONE_NEWUTS) != 0 or libc.sethostname(name, len(name)) != 0:
        error = os.strerror(ctypes.get_errno())
        sys.stderr.write(f"sagemaker_training: local-mode MPI could not give host {host} its own host name "
                         f"({error}): OpenMPI needs one per host; run local mode as root (or with "
                         "CAP_SYS_ADMIN).\n")
        sys.stderr.flush()
        os._exit(NO_NAMESPACE_EXIT)
    os.execv(argv[0], argv)


def kill_tree(pid: int, signum: int = signal.SIGKILL) -> None:
    """``signum`` to ``pid``, its process group and every process under it (a daemonised prted is in none)."""
    import psutil  # noqa: PLC0415

    try:
        tree = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
    for process in tree:
        try:
            process.send_signal(signum)
        except psutil.NoSuchProcess:
            pass


def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall((json.dumps(message) + "\n").encode())


def read_message(conn: socket.socket) -> dict | None:
    """One JSON line from ``conn``, or None when it closes first or the line is longer than
    :data:`MAX_MESSAGE_BYTES` (or is not a JSON object)."""
    data = bytearray()
    while not data.endswith(b"\n"):
        if len(data) > MAX_MESSAGE_BYTES:
            return None
        piece = conn.recv(65536)
        if not piece:
            return None
        data += piece
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


def serve_launch(conn: socket.socket, host: str, environ: dict, rendezvous: str, started) -> int | None:
    """One connection: a launch request, run to its end; the exit code (None: not a launch).

    ``started(process)`` is called once the daemon runs. When the agent goes
    away first, the daemon's whole group is killed.
    """
    import threading  # noqa: PLC0415

    message = read_message(conn)
    if not message or message.get("op") != "launch" or not isinstance(message.get("command"), str):
        return None
    process = start_daemon(host, message["command"], environ, rendezvous)
    started(process)

    def watch_agent():
        while True:
            try:
                if not conn.recv(1):
                    break
            except OSError:
                break
        if process.poll() is None:
            kill_tree(process.pid)

    threading.Thread(target=watch_agent, daemon=True).start()
    code = process.wait()
    try:
        _send(conn, {"exit": code if code >= 0 else 128 - code})
    except OSError:
        pass
    return code


def main(argv: list) -> int:
    if argv[:1] == ["--become"]:
        become(argv[1], argv[2:])
    while argv and argv[0].startswith("-"):  # options meant for ssh
        argv = argv[1:]
    if len(argv) < 2:
        sys.stderr.write("usage: python -m sagemaker_training.mpi.agent HOST COMMAND...\n")
        return 2
    host, command = argv[0], " ".join(argv[1:])
    for signum in (signal.SIGTERM, signal.SIGINT):  # mpirun's group gets the job's stop: mpirun ends the daemons
        signal.signal(signum, signal.SIG_IGN)
    rendezvous = rendezvous_dir()
    if not rendezvous:
        sys.stderr.write("sagemaker_training: SAGEMAKER_MPI_RENDEZVOUS_DIR is not set: the launch agent only runs in "
                         "local mode.\n")
        return 255
    if host == os.environ.get("SM_CURRENT_HOST"):
        code = start_daemon(host, command, dict(os.environ), rendezvous).wait()
        return code if code >= 0 else 128 - code
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(socket_path(rendezvous, host))
            _send(conn, {"op": "launch", "command": command})
            answer = read_message(conn)
    except OSError as exc:
        sys.stderr.write(f"sagemaker_training: the MPI launch could not reach host {host} ({exc}).\n")
        return 255
    if not answer or not isinstance(answer.get("exit"), int):
        sys.stderr.write(f"sagemaker_training: host {host} ended the MPI launch without an exit code.\n")
        return 255
    return answer["exit"]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
