"""frameworks/tensorflow/peers.py: the peer watcher stands down through its handle; the frameworks'
watch and exit bounds are checked at plan time."""

from __future__ import annotations

import os

import pytest

from helpers import write_base_dir
from supervision_helpers import Sink, py_argv
from sagemaker_training.supervision.child import wait_ended
from sagemaker_training.supervision.processes import ProcessSpec, supervise


LEGACY_TF = ("def estimator_fn(run_config, hyperparameters):\n    pass\n"
             "def train_input_fn(training_dir, hyperparameters):\n    pass\n"
             "def eval_input_fn(training_dir, hyperparameters):\n    pass\n")


def _tf_two_host_plan(tmp_path, current_host="algo-1"):
    from sagemaker_training.environment import Environment
    from sagemaker_training.frameworks import tensorflow as tf_runner
    from sagemaker_training.train import Job

    base = write_base_dir(tmp_path / current_host, program="train.py", code={"train.py": LEGACY_TF},
                          hosts=("algo-1", "algo-2"), current_host=current_host)
    job = Job(env=Environment(base, {}), addresses={"algo-1": "127.0.0.1", "algo-2": "127.0.0.1"})
    return tf_runner.plan(job)


WAIT_FOR_THE_WATCHER = """
import os, time
def watcher_ready():
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
            with open(f"/proc/{pid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if b"tensorflow.peers" in command and int(status["PPid"]) == os.getppid():
            return bool(int(status["SigCgt"], 16) & (1 << (15 - 1)))
    return False
while not watcher_ready():
    time.sleep(0.01)
"""


def test_the_peer_watcher_stands_down_through_its_handle(tmp_path, monkeypatch):
    import socket
    import tempfile

    from sagemaker_training.local.ports import free_port_block

    port = free_port_block(4)  # master, worker 0, ps 0, ps 1
    for name, value in (("SAGEMAKER_TF_PORT", port), ("SAGEMAKER_TF_PS_PORT", port + 2), ("SAGEMAKER_PORT_STRIDE", 1),
                        ("SAGEMAKER_TF_PEER_POLL_SECONDS", 0.05), ("SAGEMAKER_TF_PEER_WAIT_SECONDS", 0.5)):
        monkeypatch.setenv(name, str(value))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    other_ps = socket.create_server(("127.0.0.1", port + 3))  # algo-2's parameter server
    plan = _tf_two_host_plan(tmp_path)
    _, _, watcher = plan.specs
    handed = []

    def on_mains_done(children, stopping):
        handed.extend(child.name for child in children)
        plan.on_mains_done(children, stopping=stopping)
        assert os.listdir(scratch) == []  # no marker file: the watcher got a signal through its handle
        other_ps.close()  # the peers end, as they do when the job is over
        # a watcher still watching would report the loss and fail; one that stood down has ended, quietly
        assert wait_ended(children, timeout=30) == []

    err = Sink()
    # the trainer ends once the watcher, its sibling, has its SIGTERM handler (it stands down on SIGTERM)
    trainer = ProcessSpec(name="master", argv=py_argv(WAIT_FOR_THE_WATCHER))
    try:
        outcome = supervise([watcher, trainer], grace=5, on_mains_done=on_mains_done, err=err)
    finally:
        other_ps.close()
    assert outcome.ok
    assert handed == ["peer watch on algo-1"]
    assert outcome.exit_codes == {"master": 0, "peer watch on algo-1": 0}  # it stood down by itself, quietly
    assert "went away" not in "".join(err.parts)


def test_bad_framework_bounds_are_refused_naming_them(tmp_path, monkeypatch):
    from sagemaker_training.errors import ClientError
    from sagemaker_training.frameworks import mxnet

    with pytest.raises(ClientError, match=r"SAGEMAKER_MXNET_NODE_EXIT_SECONDS='soon' is not valid"):
        mxnet.node_exit_seconds({"SAGEMAKER_MXNET_NODE_EXIT_SECONDS": "soon"})
    monkeypatch.setenv("SAGEMAKER_TF_PEER_START_SECONDS", "-1")  # read by the watcher child: checked at plan time
    with pytest.raises(ClientError, match=r"SAGEMAKER_TF_PEER_START_SECONDS='-1' is not valid: it must be a number "
                                          r">= 0"):
        _tf_two_host_plan(tmp_path)
