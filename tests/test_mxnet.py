"""MXNet on one host: the plan, legacy train() arguments, saving, clear errors.

Jobs run through the real ``train`` entrypoint (a LocalCluster of one host)
with real MXNet on small MNIST slices.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import time

import pytest

from helpers import write_base_dir
from mxnet_jobs import EXAMPLE_DIR, mnist_channels, mxnet_job, read_failure
from sagemaker_training.environment import Environment
from sagemaker_training.errors import UserError
from sagemaker_training.frameworks import load
from sagemaker_training.frameworks.mxnet import KVSTORE_MODULE, TRAINER_MODULE, plan, wait_for_kvstore_nodes
from sagemaker_training.frameworks.mxnet.trainer import TRAIN_ARGUMENTS, default_save, select_arguments
from sagemaker_training.train import Job
from sagemaker_training.supervision.processes import ProcessSpec, supervise

MNIST = os.path.join(EXAMPLE_DIR, "mnist.py")


@pytest.fixture(scope="module")
def channels(tmp_path_factory):
    return mnist_channels(str(tmp_path_factory.mktemp("mnist")), train=2000, test=500)


# ---------------------------------------------------------------------------
# plan(): which children, decided without importing the user module or MXNet


def _job(tmp_path, program_text, hosts=("algo-1",), current="algo-1"):
    base = write_base_dir(tmp_path / current, program="entry.py", code={"entry.py": program_text}, hosts=hosts,
                          current_host=current)
    addresses = {h: f"10.0.0.{i + 1}" for i, h in enumerate(hosts)} if len(hosts) > 1 else {}
    return Job(env=Environment(base, {}), addresses=addresses)


def test_runner_is_chosen_by_framework_name():
    assert load("mxnet").plan is plan


def test_legacy_mode_when_train_is_defined_at_top_level(tmp_path):
    # The module would fail if imported: plan() must read it, not run it.
    result = plan(_job(tmp_path, "raise SystemExit('imported')\ndef train(**kwargs):\n    pass\n"))
    (spec,) = result.specs
    assert spec.argv[1:] == ["-m", TRAINER_MODULE] and spec.main and spec.user_code
    assert "DMLC_ROLE" not in spec.env
    assert "legacy" in result.description


def test_script_mode_without_top_level_train(tmp_path):
    result = plan(_job(tmp_path, "import sys\nif __name__ == '__main__':\n    def train():\n        pass\n"))
    (spec,) = result.specs
    assert spec.argv[-1].endswith("entry.py") and spec.main
    assert "script mode" in result.description


@pytest.mark.parametrize("current, roles", [("algo-1", ["scheduler", "server"]), ("algo-2", ["server"])])
def test_distributed_plan_runs_kvstore_nodes_beside_the_worker(tmp_path, monkeypatch, current, roles):
    monkeypatch.setenv("SAGEMAKER_MXNET_PORT", "8123")
    job = _job(tmp_path, "def train(): pass\n", hosts=("algo-2", "algo-1"), current=current)
    *nodes, worker = plan(job).specs
    assert [n.env["DMLC_ROLE"] for n in nodes] == roles
    for node, role in zip(nodes, roles):
        assert node.argv[1:] == ["-m", KVSTORE_MODULE]
        assert not node.main and not node.user_code
        assert node.name == f"mxnet {role} on {current}"
    assert worker.main and worker.env["DMLC_ROLE"] == "worker"
    assert plan(job).on_mains_done is not None
    for spec in (*nodes, worker):
        assert spec.env["DMLC_PS_ROOT_URI"] == "10.0.0.2"  # algo-1, the first host sorted
        assert spec.env["DMLC_PS_ROOT_PORT"] == "8123"
        assert spec.env["DMLC_NUM_WORKER"] == spec.env["DMLC_NUM_SERVER"] == "2"
        assert spec.env["SM_CURRENT_HOST"] == current


@pytest.mark.parametrize("lives, timeout, waited, node_code", [
    (0.3, 10.0, (0.25, 5.0), 0),               # the node ends by itself: the host waits for it, no longer
    (30.0, 0.5, (0.45, 3.0), -signal.SIGTERM),  # it does not: the host stops it after the bound
])
def test_host_waits_a_bounded_time_for_its_kvstore_nodes(lives, timeout, waited, node_code):
    # The supervisor hands on_mains_done its own handles of the node: nothing is looked up by command line.
    node = ProcessSpec(name="mxnet server on algo-1", argv=[sys.executable, "-c", f"import time; time.sleep({lives})"],
                       main=False, user_code=False)
    worker = ProcessSpec(name="worker", argv=[sys.executable, "-c", "pass"])
    started = time.monotonic()
    outcome = supervise([node, worker], grace=5, aux_grace=5,
                        on_mains_done=functools.partial(wait_for_kvstore_nodes, timeout))
    assert waited[0] < time.monotonic() - started < waited[1]
    assert outcome.ok and outcome.exit_codes == {"worker": 0, "mxnet server on algo-1": node_code}


# ---------------------------------------------------------------------------
# train()'s arguments

AVAILABLE = {name: f"<{name}>" for name in TRAIN_ARGUMENTS}


def test_declared_arguments_only():
    def train(hyperparameters, hosts, model_dir=None, other="kept"):
        pass

    assert select_arguments(train, AVAILABLE) == {
        "hyperparameters": "<hyperparameters>", "hosts": "<hosts>", "model_dir": "<model_dir>"}


def test_all_nine_with_kwargs():
    def train(channel_input_dirs, **kwargs):
        pass

    assert select_arguments(train, AVAILABLE) == AVAILABLE


def test_required_argument_we_cannot_supply_names_it():
    def train(hyperparameters, learning_rate, *args):
        pass

    with pytest.raises(UserError, match=r"train\(\) requires 'learning_rate', which the toolkit cannot"):
        select_arguments(train, AVAILABLE)


def test_default_save_refuses_what_it_cannot_write(tmp_path):
    import mxnet as mx

    with pytest.raises(UserError, match=r"returned a builtins.dict, which the default save cannot write .*"
                                        r"define save\(model, model_dir\) in m.py, or return None"):
        default_save({"weights": 1}, str(tmp_path), "m.py")
    unbound = mx.mod.Module(mx.sym.FullyConnected(mx.sym.var("data"), num_hidden=2), label_names=None)
    with pytest.raises(UserError, match=r"a Module that is not bound with initialized parameters: call fit\(\)"):
        default_save(unbound, str(tmp_path), "m.py")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# Jobs through `train`


def test_mnist_module_default_save_loads_back_and_predicts(tmp_path, channels):
    job = mxnet_job(str(tmp_path), "mnist.py", files=[MNIST], channels=channels,
                    hyperparameters={"learning_rate": 0.5, "epochs": 20})
    result = job.run(max_run=120)
    assert result.ok, result.failure_reason
    model_dir = os.path.join(job.base_dir("algo-1"), "model")
    assert sorted(os.listdir(model_dir)) == ["model-0000.params", "model-shapes.json", "model-symbol.json"]
    with open(os.path.join(model_dir, "model-shapes.json")) as f:
        shapes = json.load(f)
    assert shapes == [{"name": "data", "shape": [100, 1, 28, 28]}]
    assert os.path.exists(os.path.join(job.base_dir("algo-1"), "output", "success"))

    import mxnet as mx

    module = mx.mod.Module.load(os.path.join(model_dir, "model"), 0)
    module.bind(data_shapes=[(d["name"], tuple(d["shape"])) for d in shapes], for_training=False)
    labels, images = load_example().load_data(channels["test"])
    predicted = module.predict(mx.io.NDArrayIter(images, batch_size=100)).asnumpy().argmax(axis=1)
    assert predicted.shape == (500,)
    assert (predicted == labels).mean() > 0.6


GLUON_TRAIN = """
    import os
    import mxnet as mx
    from mxnet import autograd, gluon

    def train(hyperparameters, num_cpus):
        net = gluon.nn.HybridSequential()
        net.add(gluon.nn.Dense(8, activation="relu"), gluon.nn.Dense(2))
        net.initialize()
        trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": hyperparameters["lr"]})
        loss = gluon.loss.SoftmaxCrossEntropyLoss()
        x, y = mx.nd.random.uniform(shape=(16, 4)), mx.nd.array([0, 1] * 8)
        for _ in range(3):
            with autograd.record():
                value = loss(net(x), y)
            value.backward()
            trainer.step(16)
        net.hybridize()
        net(x)
        return net
"""

GLUON_SAVE = """
    def save(model, model_dir):
        model.export(os.path.join(model_dir, "gluon"))
"""


def test_gluon_block_with_custom_save(tmp_path):
    job = mxnet_job(str(tmp_path), "gluon.py", sources={"gluon.py": GLUON_TRAIN + GLUON_SAVE},
                    hyperparameters={"lr": 0.1})
    result = job.run(max_run=120)
    assert result.ok, result.failure_reason
    model_dir = os.path.join(job.base_dir("algo-1"), "model")
    assert sorted(os.listdir(model_dir)) == ["gluon-0000.params", "gluon-symbol.json"]

    import mxnet as mx

    net = mx.gluon.SymbolBlock.imports(os.path.join(model_dir, "gluon-symbol.json"), ["data"],
                                       os.path.join(model_dir, "gluon-0000.params"))
    assert net(mx.nd.ones((3, 4))).shape == (3, 2)


def test_gluon_block_without_save_says_to_define_save(tmp_path):
    job = mxnet_job(str(tmp_path), "gluon.py", sources={"gluon.py": GLUON_TRAIN}, hyperparameters={"lr": 0.1})
    result = job.run(max_run=120)
    assert not result.ok
    headline = read_failure(job).splitlines()[0]
    assert headline.startswith("UserError: gluon.py: train() returned a Gluon HybridSequential, which the default "
                               "save cannot write (it saves an mx.mod.Module): define save(model, model_dir) in "
                               "gluon.py"), headline
    assert "AttributeError" not in read_failure(job)


def test_explicit_arguments_without_kwargs_and_no_model(tmp_path):
    source = """
        import json, os

        def train(hyperparameters, channel_input_dirs, model_dir, current_host, hosts, num_cpus,
                  output_data_dir, input_data_config, num_gpus, unused="default"):
            with open(os.path.join(output_data_dir, "seen.json"), "w") as f:
                json.dump({"hyperparameters": hyperparameters, "channels": channel_input_dirs,
                           "model_dir": model_dir, "current_host": current_host, "hosts": hosts,
                           "num_cpus": num_cpus, "num_gpus": num_gpus, "unused": unused,
                           "input_data_config": input_data_config}, f)
    """
    channel = tmp_path / "data"
    channel.mkdir()
    job = mxnet_job(str(tmp_path), "explicit.py", sources={"explicit.py": source},
                    hyperparameters={"lr": 0.5, "layers": [1, 2], "name": "x",
                                     "_tuning_objective_metric": "loss"},
                    channels={"train": str(channel)})
    result = job.run(max_run=60)
    assert result.ok, result.failure_reason
    base = job.base_dir("algo-1")
    with open(os.path.join(base, "output", "data", "seen.json")) as f:
        seen = json.load(f)
    # Decoded; neither sagemaker_* settings nor tuning keys.
    assert seen["hyperparameters"] == {"lr": 0.5, "layers": [1, 2], "name": "x"}
    assert seen["channels"] == {"train": os.path.join(base, "input", "data", "train")}
    assert seen["model_dir"] == os.path.join(base, "model")
    assert (seen["current_host"], seen["hosts"], seen["num_gpus"]) == ("algo-1", ["algo-1"], 0)
    assert seen["num_cpus"] >= 1 and seen["unused"] == "default"
    assert seen["input_data_config"]["train"]["TrainingInputMode"] == "File"
    assert os.listdir(os.path.join(base, "model")) == []  # returned None: nothing saved, still a success
    assert os.path.exists(os.path.join(base, "output", "success"))


def test_required_parameter_we_cannot_supply_is_a_user_error(tmp_path):
    source = """
        def train(hyperparameters, epochs):
            raise AssertionError("not called")
    """
    job = mxnet_job(str(tmp_path), "needs.py", sources={"needs.py": source})
    result = job.run(max_run=60)
    assert not result.ok
    headline = read_failure(job).splitlines()[0]
    assert headline.startswith("UserError: needs.py: train() requires 'epochs', which the toolkit cannot "
                               "supply"), headline


def test_exception_in_train_names_the_function(tmp_path):
    source = """
        def train(**kwargs):
            raise ValueError("bad learning rate")
    """
    job = mxnet_job(str(tmp_path), "fails.py", sources={"fails.py": source})
    result = job.run(max_run=60)
    assert not result.ok and result.exit_code == 1
    failure = read_failure(job)
    assert failure.startswith("UserError: train raised ValueError: bad learning rate. Fix the training code")
    assert 'raise ValueError("bad learning rate")' in failure  # the traceback's last lines follow


def test_import_error_of_the_user_module_names_the_file(tmp_path):
    source = """
        import not_installed_anywhere

        def train(**kwargs):
            pass
    """
    job = mxnet_job(str(tmp_path), "broken.py", sources={"broken.py": source})
    assert not job.run(max_run=60).ok
    assert read_failure(job).startswith(
        "UserError: importing broken.py raised ModuleNotFoundError: No module named 'not_installed_anywhere'")


def load_example():
    import importlib.util

    spec = importlib.util.spec_from_file_location("mnist_example", MNIST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
