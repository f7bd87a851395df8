"""The TensorFlow runner's logic without TensorFlow: the plan, the user
module's interface, argument aliases, settings, checkpoint locations and the
S3 mirror, and the peer watcher."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import types

import pytest

from helpers import sdk_encode, write_base_dir
from sagemaker_training.environment import Environment
from sagemaker_training.errors import ClientError, UserError
from sagemaker_training.frameworks import tensorflow as tf_runner
from sagemaker_training.frameworks.tensorflow import checkpoints, estimator, peers, user_module
from sagemaker_training.train import Job

LEGACY = """
    import tensorflow as tf
    def estimator_fn(run_config, hyperparameters):
        return None
    def train_input_fn(training_dir, hyperparameters):
        pass
    def eval_input_fn(training_dir, hyperparameters):
        pass
"""
SCRIPT = """
    import os
    print("hello")
"""


def make_job(tmp_path, code, hps=None, hosts=("algo-1",), current_host=None, addresses=None, program="train.py"):
    base = write_base_dir(tmp_path / (current_host or "base"), sdk_encode(hps or {}), program=program,
                          code={program: code}, hosts=hosts, current_host=current_host)
    env = Environment(base, {})
    return Job(env=env, addresses=addresses or {h: "127.0.0.1" for h in hosts} if len(hosts) > 1 else {})


@pytest.fixture
def ports(monkeypatch):
    monkeypatch.setenv("SAGEMAKER_TF_PORT", "7000")
    monkeypatch.setenv("SAGEMAKER_TF_PS_PORT", "7001")
    monkeypatch.setenv("SAGEMAKER_PORT_STRIDE", "10")


# --------------------------------------------------------------------------
# plan()


def test_legacy_single_host_runs_the_estimator_child(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["stray:2222"]}, "task": {"type": "worker", "index": 0}}')
    plan = tf_runner.plan(make_job(tmp_path, LEGACY))
    [spec] = plan.specs
    assert spec.argv[1:] == ["-m", "sagemaker_training.frameworks.tensorflow.estimator"]
    assert spec.main and spec.user_code
    assert "TF_CONFIG" not in spec.env  # one host: no cluster, and the parent's stray TF_CONFIG stays out
    assert "legacy TensorFlow" in plan.description


@pytest.mark.parametrize("code", [
    "from model import model_fn\nfrom inputs import train_input_fn, eval_input_fn\n",
    "def keras_model_fn(hyperparameters):\n    pass\n",
    "model_fn = lambda f, l, m, p: None\n",
])
def test_legacy_detection_reads_the_syntax_tree(tmp_path, code):
    job = make_job(tmp_path, code)
    assert user_module.is_legacy(job.env)


def test_script_mode_is_not_imported(tmp_path):
    # A script that would fail if imported or run: the decision never executes it.
    job = make_job(tmp_path, "raise SystemExit('ran!')\ndef main():\n    pass\n")
    plan = tf_runner.plan(job)
    [spec] = plan.specs
    assert spec.argv[1] == os.path.join(job.env.code_dir, "train.py")
    assert "script mode" in plan.description


def test_legacy_two_hosts_parameter_servers(tmp_path, ports):
    hosts = ("algo-1", "algo-2")
    plans = {h: tf_runner.plan(make_job(tmp_path, LEGACY, hosts=hosts, current_host=h)) for h in hosts}
    for host, plan in plans.items():
        ps, trainer, watcher = plan.specs
        assert (ps.main, trainer.main, watcher.main) == (False, True, False)
        assert not ps.user_code and not watcher.user_code
        ps_config, trainer_config = json.loads(ps.env["TF_CONFIG"]), json.loads(trainer.env["TF_CONFIG"])
        assert ps_config["cluster"] == trainer_config["cluster"] == {
            "master": ["127.0.0.1:7000"], "ps": ["127.0.0.1:7001", "127.0.0.1:7011"], "worker": ["127.0.0.1:7010"]}
        assert ps_config["task"] == {"type": "ps", "index": hosts.index(host)}
        assert trainer_config["environment"] == "cloud"
        assert callable(plan.on_mains_done)
        assert host in trainer.name and host in ps.name
    assert json.loads(plans["algo-1"].specs[1].env["TF_CONFIG"])["task"] == {"type": "master", "index": 0}
    assert json.loads(plans["algo-2"].specs[1].env["TF_CONFIG"])["task"] == {"type": "worker", "index": 0}
    # The watcher of algo-1 follows algo-2's parameter server, and the reverse.
    watched = json.loads(plans["algo-1"].specs[2].argv[-1])
    assert [(t["task"], t["host"], t["port"], t["watch"]) for t in watched["targets"]] == [
        ("ps 1", "algo-2", 7011, True)]
    watched = json.loads(plans["algo-2"].specs[2].argv[-1])
    assert [(t["task"], t["port"], t["watch"]) for t in watched["targets"]] == [("master", 7000, False),
                                                                              ("ps 0", 7001, True)]


def test_worker_delay_is_read_by_settings_before_anything_runs(tmp_path, ports):
    hosts = ("algo-1", "algo-2")
    job = make_job(tmp_path, LEGACY, hosts=hosts, current_host="algo-2")
    bad = Job(env=Environment(job.env.base_dir, {"SAGEMAKER_TF_WORKER_DELAY_SECONDS": "soon"}),
              addresses=job.addresses)
    with pytest.raises(ClientError) as caught:
        tf_runner.plan(bad)
    assert str(caught.value) == ("environment variable SAGEMAKER_TF_WORKER_DELAY_SECONDS='soon' is not valid: it must "
                                 "be a number >= 0; fix or unset it.")
    assert tf_runner.worker_delay({"SAGEMAKER_TF_WORKER_DELAY_SECONDS": "2.5"}) == 2
    assert tf_runner.worker_delay({"SAGEMAKER_TF_WORKER_DELAY_SECONDS": " "}) is None
    assert estimator.worker_delay is tf_runner.worker_delay  # the trainer reads it the same way


def test_script_mode_parameter_servers_and_mwms(tmp_path, ports, monkeypatch):
    hosts = ("algo-1", "algo-2")
    ps_job = make_job(tmp_path, SCRIPT, {"sagemaker_parameter_server_enabled": True, "epochs": 2}, hosts=hosts,
                      current_host="algo-2")
    ps, script, _ = tf_runner.plan(ps_job).specs
    assert script.argv[-2:] == ["--epochs", "2"] and script.main and script.user_code
    assert json.loads(script.env["TF_CONFIG"])["task"] == {"type": "worker", "index": 0}
    mwms_job = make_job(tmp_path / "m", SCRIPT, {"sagemaker_multi_worker_mirrored_strategy_enabled": True},
                        hosts=hosts, current_host="algo-2")
    [spec] = tf_runner.plan(mwms_job).specs
    assert json.loads(spec.env["TF_CONFIG"]) == {
        "cluster": {"worker": ["127.0.0.1:7000", "127.0.0.1:7010"]}, "environment": "cloud",
        "task": {"type": "worker", "index": 1}}
    # One host with parameter servers enabled: the script alone, as the SageMaker TF toolkit does.
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["stray:2222"]}}')
    [plain] = tf_runner.plan(make_job(tmp_path / "one", SCRIPT, {"sagemaker_parameter_server_enabled": True})).specs
    assert "TF_CONFIG" not in plain.env


def test_script_mode_tuning_job_model_dir(tmp_path):
    hps = {"model_dir": "s3://bucket/prefix/model", "_tuning_objective_metric": "loss",
           "sagemaker_job_name": "tune-001"}
    base = write_base_dir(tmp_path, {**sdk_encode(hps), "_tuning_objective_metric": "loss"}, program="train.py",
                          code={"train.py": SCRIPT})
    [spec] = tf_runner.plan(Job(env=Environment(base, {}), addresses={})).specs
    assert spec.argv[spec.argv.index("--model_dir") + 1] == "s3://bucket/prefix/model/tune-001/model"
    assert tf_runner.tuning_model_dir({"model_dir": "/opt/ml/model", "_tuning_objective_metric": "x"}, "j") is None
    assert tf_runner.tuning_model_dir({"model_dir": "s3://b/p"}, "j") is None


def test_tuning_job_model_dir_is_per_training_job(tmp_path):
    """What SDK 1.72.1's HyperparameterTuner really sends a TF script-mode job: ``model_dir`` and
    ``sagemaker_job_name`` name the *tuning* job; TRAINING_JOB_NAME (set by the platform and by
    serve per training job) is the job's own name, and wins: every job gets its own model_dir."""
    hps = {"model_dir": "s3://bucket/tune-7/model", "sagemaker_job_name": "tune-7", "sagemaker_program": "train.py",
           "sagemaker_region": "us-west-2", "sagemaker_container_log_level": 20,
           "sagemaker_estimator_class_name": "TensorFlow", "sagemaker_estimator_module": "sagemaker.tensorflow.estimator"}
    tuned = {"_tuning_objective_metric": "loss", "learning_rate": "0.0123"}  # the platform's: plain strings
    base = write_base_dir(tmp_path, {**sdk_encode(hps), **tuned}, program="train.py", code={"train.py": SCRIPT})
    env = Environment(base, {"TRAINING_JOB_NAME": "tune-7-002-1a2b3c4d"})
    assert env.job_name == "tune-7-002-1a2b3c4d"
    [spec] = tf_runner.plan(Job(env=env, addresses={})).specs
    assert spec.argv[spec.argv.index("--model_dir") + 1] == "s3://bucket/tune-7/model/tune-7-002-1a2b3c4d/model"
    assert json.loads(spec.env["SM_TRAINING_ENV"])["job_name"] == "tune-7-002-1a2b3c4d"


def test_script_mode_tuning_job_model_dir_under_mpi(tmp_path):
    import shutil

    from sagemaker_training import mpi
    from sagemaker_training.train import make_plan

    hps = {"model_dir": "s3://bucket/prefix/model", "sagemaker_job_name": "tune-002", "sagemaker_mpi_enabled": True}
    base = write_base_dir(tmp_path, {**sdk_encode(hps), "_tuning_objective_metric": "loss"}, program="train.py",
                          code={"train.py": SCRIPT})
    job = Job(env=Environment(base, {}), addresses={})
    try:
        [launcher] = make_plan(tf_runner, job).specs
    finally:
        shutil.rmtree(mpi.state_dir(job.env.current_host, {"SAGEMAKER_BASE_DIR": job.env.base_dir}), True)
    assert launcher.name == "mpirun"
    # mpirun's command line ends with the script's: the rewritten model_dir is what every rank gets
    assert launcher.argv[launcher.argv.index("--model_dir") + 1] == "s3://bucket/prefix/model/tune-002/model"


def test_mpi_is_no_longer_refused_it_is_planned_in_one_place(tmp_path):
    import shutil

    from sagemaker_training import mpi

    job = make_job(tmp_path, SCRIPT, {"sagemaker_mpi_enabled": True})
    [script] = tf_runner.plan(job).specs  # the runner itself runs the script; job.py asks mpi.plan first
    assert mpi.enabled(job.env)
    try:
        [launcher] = mpi.plan(job).specs
    finally:
        shutil.rmtree(mpi.state_dir(job.env.current_host, {"SAGEMAKER_BASE_DIR": job.env.base_dir}), True)
    assert launcher.name == "mpirun"
    assert launcher.argv[-len(script.argv) - 3:] == ["-m", "sagemaker_training.mpi.rank", "--", *script.argv]


def test_the_supervisor_never_imports_tensorflow(tmp_path):
    hosts = ("algo-1", "algo-2")
    job_dir = write_base_dir(tmp_path, sdk_encode({}), program="train.py", code={"train.py": LEGACY}, hosts=hosts)
    code = f"""
import sys
from sagemaker_training.environment import Environment
from sagemaker_training.frameworks import load
from sagemaker_training.train import Job
addresses = {{"algo-1": "127.0.0.1", "algo-2": "127.0.0.1"}}
plan = load("tensorflow").plan(Job(env=Environment({job_dir!r}, {{}}), addresses=addresses))
assert len(plan.specs) == 3
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "numpy", "boto3", "logging"))
print(bad)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------
# The user module


def test_check_names_what_is_missing():
    module = types.SimpleNamespace(model_fn=lambda *a: None, train_input_fn=lambda: None)
    with pytest.raises(UserError, match=r"missing eval_input_fn: iris.py defines model_fn, so it must also "
                                        r"define eval_input_fn\("):
        user_module.check(module, "iris.py")
    with pytest.raises(UserError, match="no estimator_fn, keras_model_fn or model_fn in iris.py"):
        user_module.check(types.SimpleNamespace(), "iris.py")
    both = types.SimpleNamespace(keras_model_fn=lambda h: None, train_input_fn=len, eval_input_fn=len)
    assert user_module.check(both, "x.py") == "keras_model_fn"


def test_input_function_arguments_by_name(tmp_path):
    training = tmp_path / "training"
    training.mkdir()
    channels = {"training": str(training), "eval": str(tmp_path / "eval")}
    hps = {"a": 1}
    arguments = user_module.InputArguments(channels, hps)

    def call(fn):
        args, kwargs = arguments.for_function(fn, "train_input_fn")
        return fn(*args, **kwargs)

    assert call(lambda training_dir, hyperparameters: (training_dir, hyperparameters)) == (str(training), hps)
    assert call(lambda dir, params: (dir, params)) == (str(training), hps)
    assert call(lambda channels, input_channels: (channels, input_channels)) == (channels, channels)
    assert call(lambda params, other, kept=3: (params, other, kept)) == (hps, None, 3)
    assert call(lambda **kw: sorted(kw)) == ["hyperparameters", "input_channels", "training_dir"]

    def positional_only(training_dir, params, /):
        return training_dir, params

    assert call(positional_only) == (str(training), hps)
    assert arguments.bind(lambda params: params["a"], "eval_input_fn")() == 1


def test_user_errors_are_tagged_with_the_function():
    arguments = user_module.InputArguments({}, {})

    def broken(hyperparameters):
        return hyperparameters["training"]

    with pytest.raises(KeyError) as info:
        arguments.bind(broken, "train_input_fn")()
    assert info.value.sagemaker_user_function == "train_input_fn"


def test_missing_training_channel_gives_none_and_a_missing_dir_is_refused(tmp_path, caplog):
    (tmp_path / "train").mkdir()
    arguments = user_module.InputArguments({"train": str(tmp_path / "train"), "test": str(tmp_path / "test")}, {})
    with caplog.at_level("WARNING", logger="sagemaker_training.tensorflow"):
        call = arguments.bind(lambda training_dir, hyperparameters: training_dir, "train_input_fn")
        assert call() is None
        assert arguments.bind(lambda dir: dir, "eval_input_fn")() is None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "train_input_fn asks for training_dir but the job has no 'training' channel: it gets None" in warnings[0]
    assert f"train ({tmp_path / 'train'})" in warnings[0] and "test (" not in warnings[0]
    # A 'training' channel whose directory is missing is still refused, before training.
    broken = user_module.InputArguments({"training": str(tmp_path / "gone")}, {})
    with pytest.raises(ClientError) as info:
        broken.bind(lambda training_dir: None, "train_input_fn")
    assert f"train_input_fn asks for training_dir but the job has no directory {tmp_path / 'gone'}" in \
        info.value.message
    # A Pipe-mode 'training' channel has FIFOs beside its path, no directory: it gets the path.
    piped = user_module.InputArguments({"training": str(tmp_path / "gone")}, {}, pipe_channels=["training"])
    assert piped.bind(lambda training_dir: training_dir, "train_input_fn")() == str(tmp_path / "gone")


# --------------------------------------------------------------------------
# Settings


def test_run_config_and_spec_settings():
    hps = {"save_checkpoints_steps": "50", "keep_checkpoint_max": 2, "keep_checkpoint_every_n_hours": 0.5,
           "save_summary_steps": 10, "log_step_count_steps": 5, "unrelated": "x"}
    assert estimator.run_config_kwargs(hps) == {"save_checkpoints_steps": 50, "keep_checkpoint_max": 2,
                                                "keep_checkpoint_every_n_hours": 0.5, "save_summary_steps": 10,
                                                "log_step_count_steps": 5}
    assert estimator.spec_settings({}) == {"training_steps": 1000, "evaluation_steps": 100}
    assert estimator.spec_settings({"training_steps": "20", "evaluation_steps": 3, "throttle_secs": 1,
                                    "start_delay_secs": 0}) == {
        "training_steps": 20, "evaluation_steps": 3, "throttle_secs": 1, "start_delay_secs": 0}
    with pytest.raises(ClientError, match="training_steps must be an integer, got 'many'"):
        estimator.spec_settings({"training_steps": "many"})
    with pytest.raises(ClientError, match="not both"):
        estimator.run_config_kwargs({"save_checkpoints_steps": 1, "save_checkpoints_secs": 1})


def test_model_fn_is_called_positionally():
    seen = []
    wrapped = estimator.wrap_model_fn(lambda f, l, m, p: seen.append((f, l, m, p)))
    wrapped(features="F", labels="L", mode="M", params="P", config="C")
    wrapped3 = estimator.wrap_model_fn(lambda feats, labels, mode: seen.append((feats, labels, mode)))
    wrapped3("F", "L", "M", "P", "C")

    def with_config(a, b, c, d, config):
        seen.append(config)

    estimator.wrap_model_fn(with_config)("F", "L", "M", "P", "C")
    assert seen == [("F", "L", "M", "P"), ("F", "L", "M"), "C"]


def test_chief_from_tf_config():
    assert estimator.is_chief({})
    assert estimator.is_chief({"task": {"type": "master", "index": 0}})
    assert not estimator.is_chief({"task": {"type": "worker", "index": 0}})


# --------------------------------------------------------------------------
# Checkpoints


@pytest.mark.parametrize("hps, expected", [
    ({}, "/opt/ml/model"),
    ({"checkpoint_path": "/data/ckpt"}, "/data/ckpt"),
    ({"checkpoint_path": "s3://b/ckpt"}, "s3://b/ckpt"),
    ({"checkpoint_path": "s3://b/ckpt", "_tuning_objective_metric": "loss"}, "s3://b/ckpt/job-7/checkpoints"),
    ({"checkpoint_path": "s3://b/ckpt/", "_tuning_objective_metric": "loss"}, "s3://b/ckpt/job-7/checkpoints"),
    ({"checkpoint_path": "s3://b/x/job-7/checkpoints", "_tuning_objective_metric": "loss"},
     "s3://b/x/job-7/checkpoints"),
    ({"checkpoint_path": "/data/ckpt", "_tuning_objective_metric": "loss"}, "/data/ckpt/job-7/checkpoints"),
    ({"_tuning_objective_metric": "loss"}, "/opt/ml/model"),
])
def test_checkpoint_path_rules(hps, expected):
    assert checkpoints.checkpoint_path(hps, "job-7", "/opt/ml/model") == expected


def test_tuning_rule_needs_a_job_name():
    hps = {"checkpoint_path": "s3://b/ckpt", "_tuning_objective_metric": "loss"}
    assert checkpoints.checkpoint_path(hps, None, "/opt/ml/model") == "s3://b/ckpt"


# The S3 checkpoint mirror is tested against the real S3 endpoint in test_storage.py.


# --------------------------------------------------------------------------
# Peers


def test_endpoints_of_a_parameter_server_cluster():
    config = {"cluster": {"master": ["10.0.0.1:2222"], "ps": ["10.0.0.1:2223", "10.0.0.2:2223", "10.0.0.3:2223"],
                          "worker": ["10.0.0.2:2222", "10.0.0.3:2222"]}}
    found = {(e.task, e.host, e.where, e.watch) for e in peers.endpoints(config, ["algo-3", "algo-1", "algo-2"])}
    assert found == {("master", "algo-1", "10.0.0.1:2222", False), ("worker 0", "algo-2", "10.0.0.2:2222", False),
                     ("worker 1", "algo-3", "10.0.0.3:2222", False), ("ps 0", "algo-1", "10.0.0.1:2223", True),
                     ("ps 1", "algo-2", "10.0.0.2:2223", True), ("ps 2", "algo-3", "10.0.0.3:2223", True)}


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_watch_fails_on_a_lost_parameter_server_and_names_it(tmp_path):
    clock, up = Clock(), {"ps": True, "master": True}
    targets = [peers.Endpoint("master", "algo-1", "127.0.0.1", 1, watch=False),
               peers.Endpoint("ps 0", "algo-1", "127.0.0.1", 2)]
    state = peers.Watch(targets, "the worker 0 on algo-2", 600, 120, clock=clock,
                        probe=lambda t: up["ps" if t.watch else "master"])
    state.step(confirm=1)
    up["ps"] = False
    clock.now = 10
    state.step(confirm=1)  # not confirmed yet
    clock.now = 11
    with pytest.raises(peers.PeerLost) as info:
        state.step(confirm=1)
    assert info.value.message == ("ps 0 on algo-1 (127.0.0.1:2) went away while the worker 0 on algo-2 was still "
                                  "running: that host failed or was stopped")
    assert info.value.reason().startswith("PlatformError: ps 0 on algo-1")


def test_watch_mentions_the_master_that_ended_first(tmp_path):
    clock, up = Clock(), {"ps": True, "master": True}
    targets = [peers.Endpoint("master", "algo-1", "127.0.0.1", 1, watch=False),
               peers.Endpoint("ps 0", "algo-1", "127.0.0.1", 2)]
    state = peers.Watch(targets, "the worker 0 on algo-2", 600, 120, clock=clock,
                        probe=lambda t: up["ps" if t.watch else "master"])
    state.step(1)
    up["master"] = False
    clock.now = 5
    state.step(1)
    up["ps"] = False
    clock.now = 130
    state.step(1)
    clock.now = 131
    with pytest.raises(peers.PeerLost, match=r"the master on algo-1 had ended 126s before: every worker must finish "
                                             r"within SAGEMAKER_TF_PEER_WAIT_SECONDS=120s"):
        state.step(1)


def test_watch_bounds_the_start_of_a_parameter_server():
    clock = Clock()
    state = peers.Watch([peers.Endpoint("ps 1", "algo-2", "127.0.0.1", 2)], "the master on algo-1", 30, 120,
                        clock=clock, probe=lambda t: False)
    clock.now = 29
    state.step(1)
    clock.now = 31
    with pytest.raises(peers.PeerLost, match=r"ps 1 on algo-2 \(127.0.0.1:2\) did not start within 30s"):
        state.step(1)


def _listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server, peers.Endpoint("worker 0", "algo-2", "127.0.0.1", server.getsockname()[1], watch=False)


def test_wait_closed_returns_when_the_port_closes_or_the_bound_passes():
    server, endpoint = _listener()
    assert peers.is_open(endpoint)
    threading.Timer(0.3, server.close).start()
    started = time.monotonic()
    assert peers.wait_closed([endpoint], bound=10, poll=0.05) == []
    assert 0.2 < time.monotonic() - started < 3
    server, endpoint = _listener()
    try:
        started = time.monotonic()
        assert peers.wait_closed([endpoint], bound=0.3, poll=0.05) == [endpoint]
        assert time.monotonic() - started < 2
    finally:
        server.close()


def test_watcher_child_reports_a_lost_peer(tmp_path):
    server, endpoint = _listener()
    endpoint.watch = True
    endpoint.task = "ps 1"
    error_file = tmp_path / "error.json"
    env = {**os.environ, "SAGEMAKER_ERROR_FILE": str(error_file), "SAGEMAKER_TF_PEER_POLL_SECONDS": "0.05"}
    proc = subprocess.Popen(peers.spec_argv([endpoint], "the master on algo-1"), env=env,
                            stderr=subprocess.PIPE, text=True)
    server.settimeout(30)
    server.accept()[0].close()  # the watcher's probe got through: it has seen the peer
    server.close()
    assert proc.wait(timeout=10) == 1
    record = json.loads(error_file.read_text())
    assert record["kind"] == "PlatformError"
    assert record["message"].startswith("ps 1 on algo-2")
    assert "RuntimeWarning" not in proc.stderr.read()


def test_a_worker_host_keeps_its_parameter_server_for_every_other_trainer(tmp_path, monkeypatch):
    """3 hosts: algo-2's worker is done; algo-2 waits for the master, then for algo-3's worker."""
    from sagemaker_training.local.ports import free_port_block

    base = free_port_block(6)
    monkeypatch.setenv("SAGEMAKER_TF_PORT", str(base))  # master base, worker 0 base+1, worker 1 base+2
    monkeypatch.setenv("SAGEMAKER_TF_PS_PORT", str(base + 3))
    monkeypatch.setenv("SAGEMAKER_PORT_STRIDE", "1")
    monkeypatch.setenv("SAGEMAKER_TF_PEER_POLL_SECONDS", "0.05")
    listeners = {}
    for name, port in (("master", base), ("worker 1", base + 2)):
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()
        listeners[name] = server
    plan = tf_runner.plan(make_job(tmp_path, LEGACY, hosts=("algo-1", "algo-2", "algo-3"), current_host="algo-2"))
    threading.Timer(0.3, listeners["master"].close).start()
    threading.Timer(0.8, listeners["worker 1"].close).start()
    started = time.monotonic()
    plan.on_mains_done([])
    assert 0.75 < time.monotonic() - started < 3
    assert "done_marker" not in json.loads(plan.specs[2].argv[-1])  # nothing on disk signals the watcher


def test_the_tensorflow_children_import_nothing_of_the_supervisor():
    """The trainer child and TF 1.x script mode's launcher (run as ``-m``, so the package __init__s load
    too) import neither the supervision layer nor the runner's plan modules."""
    import subprocess
    import sys

    code = ("import json, sys\n"
            "import sagemaker_training.frameworks.tensorflow.estimator\n"
            "import sagemaker_training.frameworks.tensorflow.tf1_script\n"
            "print(json.dumps({'tensorflow': 'tensorflow' in sys.modules,\n"
            "                  'ours': sorted(m for m in sys.modules if m.startswith('sagemaker_training'))}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    seen = json.loads(out.stdout)
    loaded = seen["ours"]
    assert "sagemaker_training.frameworks.tensorflow.estimator" in loaded
    supervisor = [m for m in loaded if m.startswith(("sagemaker_training.supervision", "sagemaker_training.mpi",
                                                     "sagemaker_training.local", "sagemaker_training.serve"))
                  or m in ("sagemaker_training.train", "sagemaker_training.frameworks.script",
                           "sagemaker_training.frameworks.tensorflow.runner",
                           "sagemaker_training.frameworks.tensorflow.distribution",
                           "sagemaker_training.frameworks.tensorflow.api")]
    assert supervisor == []
    assert seen["tensorflow"] is False  # imported when the child's work starts, not by its imports
