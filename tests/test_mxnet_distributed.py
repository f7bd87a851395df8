"""MXNet on two hosts of one machine (LocalCluster): ps-lite kvstore with dist_sync."""

from __future__ import annotations

import json
import os
import time

import pytest

from mxnet_jobs import EXAMPLE_DIR, mnist_channels, mxnet_job, read_failure

# The seed's mnist example, wrapped to record what the worker's kvstore saw.
MNIST_WORKER = """
    import json, os
    import mnist

    def train(output_data_dir, **kwargs):
        model = mnist.train(**kwargs)
        kv = model._kvstore
        with open(os.path.join(output_data_dir, "kvstore.json"), "w") as f:
            json.dump({"type": kv.type, "num_workers": kv.num_workers, "rank": kv.rank,
                       "role": os.environ["DMLC_ROLE"]}, f)
        return model
"""


@pytest.fixture(scope="module")
def channels(tmp_path_factory):
    return mnist_channels(str(tmp_path_factory.mktemp("mnist")), train=1000, test=200)


def test_mnist_on_two_hosts_with_dist_sync(tmp_path, channels):
    job = mxnet_job(str(tmp_path), "worker.py", sources={"worker.py": MNIST_WORKER},
                    files=[os.path.join(EXAMPLE_DIR, "mnist.py")], hosts=2, channels=channels,
                    hyperparameters={"learning_rate": 0.1, "epochs": 2})
    result = job.run(max_run=120)
    assert result.ok, result.failure_reason
    seen = []
    for host in job.hosts:
        with open(os.path.join(job.base_dir(host), "output", "data", "kvstore.json")) as f:
            seen.append(json.load(f))
    assert [(s["type"], s["num_workers"], s["role"]) for s in seen] == [("dist_sync", 2, "worker")] * 2
    assert sorted(s["rank"] for s in seen) == [0, 1]
    # Only the first host saves; its model dir is the one the platform uploads.
    assert sorted(os.listdir(os.path.join(job.base_dir("algo-1"), "model"))) == [
        "model-0000.params", "model-shapes.json", "model-symbol.json"]
    assert os.listdir(os.path.join(job.base_dir("algo-2"), "model")) == []


KILLS_ITS_SERVER = """
    import os, time
    import mxnet as mx
    import psutil

    def train(current_host, output_data_dir):
        kv = mx.kv.create("dist_sync")
        kv.init(0, mx.nd.zeros((4,)))
        if current_host == "algo-2":  # the kvstore server beside this worker, started by the same supervisor
            for sibling in psutil.Process(os.getppid()).children():
                if "frameworks.mxnet.kvstore" in " ".join(sibling.cmdline()):
                    with open(os.path.join(output_data_dir, "killed_at"), "w") as f:
                        f.write(repr(time.time()))  # first: this worker is stopped as soon as the job fails
                    sibling.kill()
        out = mx.nd.zeros((4,))
        deadline = time.time() + 120
        while time.time() < deadline:  # would block for good on the dead server
            kv.push(0, mx.nd.ones((4,)))
            kv.pull(0, out=out)
            out.wait_to_read()
"""


def test_a_killed_server_fails_the_job_fast_naming_host_and_role(tmp_path):
    job = mxnet_job(str(tmp_path), "kills.py", sources={"kills.py": KILLS_ITS_SERVER}, hosts=2)
    result = job.run(max_run=150)
    assert not result.ok
    assert "mxnet server on algo-2 was killed by SIGKILL" in result.failure_reason
    assert read_failure(job, "algo-2").startswith("ToolkitError: mxnet server on algo-2 was killed by SIGKILL")
    output = os.path.join(job.base_dir("algo-2"), "output")
    with open(os.path.join(output, "data", "killed_at")) as f:
        killed_at = float(f.read())
    assert os.path.getmtime(os.path.join(output, "failure")) - killed_at < 5  # not the max run time


CHECKS_DMLC_ENV = """
    import json, os, sys
    import mxnet as mx

    env = {k: v for k, v in os.environ.items() if k.startswith("DMLC_")}
    kv = mx.kv.create("dist_sync")
    kv.init(0, mx.nd.zeros((2,)))
    kv.push(0, mx.nd.ones((2,)))
    out = mx.nd.zeros((2,))
    kv.pull(0, out=out)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "dmlc.json"), "w") as f:
        json.dump({"env": env, "num_workers": kv.num_workers, "sum": out.asnumpy().tolist(),
                   "argv": sys.argv[1:]}, f)
"""


def test_script_mode_on_two_hosts_gets_the_dmlc_environment(tmp_path):
    job = mxnet_job(str(tmp_path), "script.py", sources={"script.py": CHECKS_DMLC_ENV}, hosts=2,
                    hyperparameters={"epochs": 3})
    result = job.run(max_run=120)
    assert result.ok, result.failure_reason
    for host in job.hosts:
        with open(os.path.join(job.base_dir(host), "output", "data", "dmlc.json")) as f:
            seen = json.load(f)
        env = seen["env"]
        assert env["DMLC_ROLE"] == "worker"
        assert env["DMLC_NUM_WORKER"] == env["DMLC_NUM_SERVER"] == "2"
        assert env["DMLC_PS_ROOT_URI"] == env["DMLC_NODE_HOST"] == "127.0.0.1"
        assert int(env["DMLC_PS_ROOT_PORT"]) > 0
        assert seen["num_workers"] == 2
        assert seen["sum"] == [2.0, 2.0]  # both workers' pushes were aggregated
        assert seen["argv"] == ["--epochs", "3"]


def test_two_hosts_whose_code_never_joins_the_kvstore_still_end(tmp_path):
    # The scheduler and servers wait for workers that never come; each host stops
    # them a bounded time after its worker succeeded.
    job = mxnet_job(str(tmp_path), "alone.py", sources={"alone.py": "print('no kvstore here')\n"}, hosts=2,
                    env={"SAGEMAKER_MXNET_NODE_EXIT_SECONDS": "1"})
    started = time.monotonic()
    result = job.run(max_run=60)
    assert result.ok, result.failure_reason
    assert time.monotonic() - started < 20
