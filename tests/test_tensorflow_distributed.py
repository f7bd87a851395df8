"""TensorFlow on two hosts of one machine (LocalCluster): parameter-server
training that ends cleanly, a killed worker or a vanished host that fails the
job fast naming host and task, and script mode's TF_CONFIG (parameter
servers, MultiWorkerMirroredStrategy)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import psutil
import pytest

from tensorflow_jobs import IRIS_DATA, IRIS_EXAMPLE, exports, read_failure, tf_job

TF_CHILDREN = ("sagemaker_training.frameworks.tensorflow.", "sagemaker_training.train")


def processes_of(work_dir: str) -> list:
    """Live processes of a job: those whose SAGEMAKER_BASE_DIR is under ``work_dir``."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if not any(any(m in part for m in TF_CHILDREN) for part in proc.info["cmdline"] or []):
                continue
            if proc.environ().get("SAGEMAKER_BASE_DIR", "").startswith(work_dir):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_parameter_server_training_ends_cleanly(tmp_path):
    job = tf_job(str(tmp_path), "iris_dnn_classifier.py", files=[IRIS_EXAMPLE], hosts=2,
                 channels={"training": IRIS_DATA}, hyperparameters={"training_steps": 200, "evaluation_steps": 10})
    started = time.monotonic()
    result = job.run(max_run=180)
    assert result.ok, result.failure_reason
    assert time.monotonic() - started < 90
    for host in job.hosts:
        assert os.path.exists(os.path.join(job.base_dir(host), "output", "success"))
    # Only the master exports; its model dir is the one the platform uploads.
    [export] = exports(job, "algo-1")
    assert os.path.isfile(os.path.join(export, "saved_model.pb"))
    assert exports(job, "algo-2") == []
    with open(os.path.join(job.base_dir("algo-1"), "model", "checkpoint")) as f:
        step = int(f.readline().split("model.ckpt-")[1].strip('"\n'))
    assert 200 <= step < 210  # asynchronous: master and worker may both take the last steps
    assert processes_of(job.work_dir) == []


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def _trainer_of(job, host: str):
    for proc in processes_of(job.work_dir):
        if "sagemaker_training.frameworks.tensorflow.estimator" in proc.cmdline() and \
                proc.environ()["SAGEMAKER_BASE_DIR"] == job.base_dir(host):
            return proc
    return None


def _training_started(job):
    return os.path.exists(os.path.join(job.base_dir("algo-1"), "model", "graph.pbtxt"))


LONG = {"training_steps": 1_000_000, "evaluation_steps": 10, "save_checkpoints_secs": 3600}


def test_a_killed_worker_fails_the_job_fast_naming_host_and_task(tmp_path):
    job = tf_job(str(tmp_path), "iris_dnn_classifier.py", files=[IRIS_EXAMPLE], hosts=2,
                 channels={"training": IRIS_DATA}, hyperparameters=LONG, grace=3)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(result=job.run(max_run=180)))
    runner.start()
    try:
        worker = _wait_for(lambda: _trainer_of(job, "algo-2"), 60, "the worker's start")
        _wait_for(lambda: _training_started(job), 60, "training")
        time.sleep(1)
        killed = time.monotonic()
        worker.send_signal(signal.SIGKILL)
        runner.join(timeout=60)
        assert not runner.is_alive()
        elapsed = time.monotonic() - killed
    finally:
        for proc in processes_of(job.work_dir):
            proc.kill()
        runner.join()
    result = outcome["result"]
    assert not result.ok
    assert elapsed < 20, elapsed
    first = result.failure_reason.splitlines()[0]
    print(f"killed worker: job ended {elapsed:.1f}s after the kill: {first}")
    assert "algo-2" in first and "worker 0" in first and "SIGKILL" in first, first
    assert "tensorflow worker 0 on algo-2 was killed by SIGKILL" in read_failure(job, "algo-2").splitlines()[0]
    assert processes_of(job.work_dir) == []


def test_a_vanished_host_fails_the_others_on_their_own(tmp_path):
    """No cluster supervisor here: algo-2's whole process tree dies (as when its
    instance goes away) and algo-1 must notice by itself, not hang."""
    job = tf_job(str(tmp_path), "iris_dnn_classifier.py", files=[IRIS_EXAMPLE], hosts=2,
                 channels={"training": IRIS_DATA}, hyperparameters=LONG, grace=3)
    procs = {}
    try:
        for spec in job.specs():
            procs[spec.name] = subprocess.Popen(spec.argv, env=spec.env, cwd=spec.cwd, start_new_session=True,
                                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
        _wait_for(lambda: _training_started(job), 60, "training")
        _wait_for(lambda: _trainer_of(job, "algo-2"), 60, "the worker's start")
        time.sleep(1)
        killed = time.monotonic()
        os.killpg(procs["algo-2"].pid, signal.SIGKILL)  # its children follow (parent-death signal)
        code = procs["algo-1"].wait(timeout=60)
        elapsed = time.monotonic() - killed
    finally:
        for proc in procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    assert code != 0
    assert elapsed < 20, elapsed
    first = read_failure(job, "algo-1").splitlines()[0]
    print(f"vanished host: algo-1 ended {elapsed:.1f}s after algo-2 vanished: {first}")
    assert first.startswith("PlatformError: peer watch on algo-1: ps 1 on algo-2 (127.0.0.1:"), first
    assert "went away while the master on algo-1 was still running" in first
    _wait_for(lambda: processes_of(job.work_dir) == [], 10, "every process gone")


# -- script mode ------------------------------------------------------------------

# Writes what it saw; with parameter servers, first waits for its own host's one.
TF_CONFIG_SCRIPT = """
    import json, os, socket, sys, time
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = config.get("task", {})
    if "ps" in config.get("cluster", {}):
        index = json.loads(os.environ["SM_HOSTS"]).index(os.environ["SM_CURRENT_HOST"])
        host, port = config["cluster"]["ps"][index].rsplit(":", 1)
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("parameter server never listened")
                time.sleep(0.1)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "seen.json"), "w") as f:
        json.dump({"tf_config": config, "args": sys.argv[1:]}, f)
"""


def _seen(job, host):
    with open(os.path.join(job.base_dir(host), "output", "data", "seen.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("flag", ["sagemaker_parameter_server_enabled",
                                  "sagemaker_multi_worker_mirrored_strategy_enabled"])
def test_script_mode_gets_tf_config(tmp_path, flag):
    job = tf_job(str(tmp_path), "train.py", sources={"train.py": TF_CONFIG_SCRIPT}, hosts=2,
                 hyperparameters={flag: True, "epochs": 3})
    result = job.run(max_run=120)
    assert result.ok, result.failure_reason
    seen = {host: _seen(job, host) for host in job.hosts}
    assert seen["algo-1"]["args"] == ["--epochs", "3"]
    configs = {host: s["tf_config"] for host, s in seen.items()}
    assert configs["algo-1"]["cluster"] == configs["algo-2"]["cluster"]
    cluster = configs["algo-1"]["cluster"]
    if flag == "sagemaker_parameter_server_enabled":
        assert sorted(cluster) == ["master", "ps", "worker"] and len(cluster["ps"]) == 2
        assert configs["algo-1"]["task"] == {"type": "master", "index": 0}
        assert configs["algo-2"]["task"] == {"type": "worker", "index": 0}
    else:
        assert list(cluster) == ["worker"] and len(cluster["worker"]) == 2
        assert [configs[h]["task"] for h in job.hosts] == [{"type": "worker", "index": 0},
                                                           {"type": "worker", "index": 1}]
    assert processes_of(job.work_dir) == []
