"""TensorFlow 1.x script mode through the real ``train`` process and through local mode.

Scripts in the style of the 2018-2019 SageMaker script-mode examples (tests/tf1_scripts: an Estimator
model_fn with tf.train.AdamOptimizer and a LoggingTensorHook under tf.app.flags/tf.app.run, a Keras
model saved with tf.contrib.saved_model.save_keras_model in graph and in eager mode, a
tf.Session/tf.placeholder loop whose helper module and Python subprocess use TF 1.x too) train with
real TensorFlow on the iris data, chosen by ``auto``, by ``SAGEMAKER_TF_API`` and by local mode's
TrainingImage tag (1 host; each script on 2 hosts; 2 hosts with parameter servers); a TF 2 script stays
TF 2 (eager) under ``auto``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from local_jobs import explain, request, run_local, write_request
from tensorflow_jobs import IRIS_DATA, load_saved_models, read_failure, tf_job

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf1_scripts")
TF1_IMAGE = "763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:1.15.2-cpu-py3"
TF1_SCRIPTMODE_IMAGE = "520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow-scriptmode:1.12.0-cpu-py3"
TF2_IMAGE = "763104351884.dkr.ecr.us-west-2.amazonaws.com/tensorflow-training:2.1.0-cpu-py3"

# No TF 1.x-only name (auto says TF 2): what it sees tells which API the job got.
PROBE = """
import json, os, sys
import tensorflow as tf
seen = {"eager": tf.executing_eagerly(), "session": hasattr(tf, "Session"), "argv": sys.argv[1:]}
with open(os.path.join(os.environ["SM_MODEL_DIR"], "probe.json"), "w") as f:
    json.dump(seen, f)
"""


def _script(name: str) -> str:
    return os.path.join(SCRIPTS, name)


def _run(job, tmp_path, name: str):
    log_path = tmp_path / f"{name}.log"
    with open(log_path, "w+") as log:
        result = job.run(max_run=180, out=log, err=log)
        log.seek(0)
        return result, log.read()


def _api_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "API for" in line]


def _json(path) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Each script trained once through ``train`` under auto (SAGEMAKER_TF_API unset)."""
    work = tmp_path_factory.mktemp("tf1-script-mode")
    channels = {"training": IRIS_DATA}
    jobs = {
        "iris_estimator.py": tf_job(str(work / "estimator"), "iris_estimator.py", files=[_script("iris_estimator.py")],
                                    channels=channels, hyperparameters={
                                        "model_dir": str(work / "estimator-checkpoints"), "train_steps": 30,
                                        "learning_rate": 0.05}),
        "keras_graph.py": tf_job(str(work / "keras-graph"), "keras_graph.py", files=[_script("keras_graph.py")],
                                 channels=channels, hyperparameters={"epochs": 2}),
        "keras_eager.py": tf_job(str(work / "keras-eager"), "keras_eager.py", files=[_script("keras_eager.py")],
                                 channels=channels, hyperparameters={"epochs": 2}),
        "session_loop.py": tf_job(str(work / "session"), "session_loop.py",
                                  files=[_script("session_loop.py"), _script("linear_helpers.py")],
                                  hyperparameters={"steps": 150, "learning-rate": 0.2}),
        "tf2_keras.py": tf_job(str(work / "tf2"), "tf2_keras.py", files=[_script("tf2_keras.py")]),
    }
    runs = {}
    for name, job in jobs.items():
        runs[name] = _run(job, work, name)
    return jobs, runs


def _output(job, name: str) -> dict:
    return _json(os.path.join(job.base_dir("algo-1"), "output", "data", name))


@pytest.mark.parametrize("script, line, name", [
    ("iris_estimator.py", 9, "tf.app"),
    ("keras_graph.py", 11, "tf.logging"),
    ("keras_eager.py", 10, "tensorflow.contrib.eager.python"),
    ("session_loop.py", 34, "tf.placeholder"),
])
def test_auto_chooses_tf1_and_says_why(trained, script, line, name):
    jobs, runs = trained
    result, log = runs[script]
    assert result.ok, result.failure_reason
    (chosen,) = _api_lines(log)
    assert chosen.endswith(f"TensorFlow 1.x API for {script}: SAGEMAKER_TF_API is auto and {script} line {line} "
                           f"uses {name}, which only TensorFlow 1.x has"), chosen
    assert f"starting TensorFlow 1.x script mode: {script} on algo-1" in log


def test_estimator_with_app_flags_trains_in_graph_mode_and_exports(trained):
    jobs, runs = trained
    job = jobs["iris_estimator.py"]
    result = _output(job, "result.json")
    assert result["eager"] is False
    assert result["global_step"] == 30  # --train_steps reached tf.app.flags through tf.app.run
    assert result["accuracy"] > 0.5
    _, log = runs["iris_estimator.py"]
    assert re.search(r"loss = [0-9.]+", log), "the LoggingTensorHook and tf.logging at INFO print the loss"
    export = result["export"]
    assert os.path.dirname(export) == os.path.join(job.base_dir("algo-1"), "model")
    assert load_saved_models([export]) == {export: ["serving_default"]}


@pytest.mark.parametrize("script, eager", [("keras_graph.py", False), ("keras_eager.py", True)])
def test_save_keras_model_writes_a_timestamped_saved_model(trained, script, eager):
    jobs, _ = trained
    job = jobs[script]
    model_dir = os.path.join(job.base_dir("algo-1"), "model")
    result = _output(job, "result.json")
    assert result["eager"] is eager
    (version,) = os.listdir(model_dir)  # one SavedModel dir, no temp- dir left
    assert re.fullmatch(r"\d{10}", version)
    assert result["export"] == os.path.join(model_dir, version)  # returned as bytes, as TF 1 did
    assert os.path.isfile(os.path.join(model_dir, version, "saved_model.pb"))
    assert load_saved_models([result["export"]])[result["export"]] == ["serving_default"]
    if script == "keras_graph.py":
        assert result["bytes"] is True and result["loss"][-1] < result["loss"][0]
    else:
        assert result["gpus"] == 0
        assert os.path.isfile(os.path.join(job.base_dir("algo-1"), "output", "data", "weights.ckpt.index"))


def test_session_loop_helper_module_and_subprocess_get_tf1(trained):
    jobs, _ = trained
    job = jobs["session_loop.py"]
    result = _output(job, "result.json")
    assert result["eager"] is False
    assert abs(result["w"] - 3) < 0.05 and abs(result["b"] - 2) < 0.05
    assert result["argv"] == ["--learning-rate", "0.2", "--steps", "150"]  # sys.argv as `python script ARGS`
    # `subprocess.run([sys.executable, "-c", ...])` from the script: TF 1.x too, in graph mode
    assert _output(job, "child.json") == {"eager": False, "doubled": [2.0, 4.0], "adam": "AdamOptimizer"}
    assert os.path.isfile(os.path.join(job.base_dir("algo-1"), "model", "linear.ckpt.index"))


def test_a_tf2_script_stays_tf2_under_auto(trained):
    jobs, runs = trained
    result, log = runs["tf2_keras.py"]
    assert result.ok, result.failure_reason
    (chosen,) = _api_lines(log)
    assert chosen.endswith("TensorFlow 2 API for tf2_keras.py: SAGEMAKER_TF_API is auto and tf2_keras.py uses no "
                           "name only TensorFlow 1.x has"), chosen
    assert _output(jobs["tf2_keras.py"], "result.json") == {"eager": True, "tf": "module", "module": "tensorflow"}


def test_the_knob_overrides_auto_both_ways(tmp_path):
    forced = tf_job(str(tmp_path / "one"), "probe.py", sources={"probe.py": PROBE}, env={"SAGEMAKER_TF_API": "1"},
                    hyperparameters={"epochs": 1})
    result, log = _run(forced, tmp_path, "one")
    assert result.ok, result.failure_reason
    assert _api_lines(log)[0].endswith("TensorFlow 1.x API for probe.py: SAGEMAKER_TF_API=1")
    assert _json(os.path.join(forced.base_dir("algo-1"), "model", "probe.json")) == {
        "eager": False, "session": True, "argv": ["--epochs", "1"]}

    # a TF 1.x script told it is TF 2 never sees the namespace: it fails on the first TF 1 name
    tf2 = tf_job(str(tmp_path / "two"), "iris_estimator.py", files=[_script("iris_estimator.py")],
                 channels={"training": IRIS_DATA}, env={"SAGEMAKER_TF_API": "2"})
    result, log = _run(tf2, tmp_path, "two")
    assert not result.ok
    assert _api_lines(log)[0].endswith("TensorFlow 2 API for iris_estimator.py: SAGEMAKER_TF_API=2")
    assert "has no attribute 'app'" in read_failure(tf2)


def test_an_s3_model_dir_is_trained_locally_mirrored_and_resumed(tmp_path, s3, s3_bucket):
    """The SDK passes ``--model_dir s3://...``; TensorFlow 2.15 has no S3 file system, so the script gets the
    local checkpoint dir and S3 is kept in step with it; a second job resumes from S3."""
    bucket = s3_bucket("tf1-model-dir")
    model_dir = f"s3://{bucket}/job/model"
    steps = []
    for run in ("first", "second"):
        job = tf_job(str(tmp_path / run), "iris_estimator.py", files=[_script("iris_estimator.py")],
                     channels={"training": IRIS_DATA}, hyperparameters={"model_dir": model_dir, "train_steps": 20})
        result, log = _run(job, tmp_path, run)
        assert result.ok, result.failure_reason
        base = job.base_dir("algo-1")
        assert f"the script's model_dir {model_dir} is the local {os.path.join(base, 'checkpoints')}" in log
        steps.append(_output(job, "result.json")["global_step"])
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="job/model/").get("Contents", [])]
        assert "job/model/checkpoint" in keys and f"job/model/model.ckpt-{steps[-1]}.index" in keys, keys
    assert steps == [20, 40]  # the second job restored the first one's checkpoint from S3


def test_a_bad_knob_fails_before_anything_runs(tmp_path):
    job = tf_job(str(tmp_path), "probe.py", sources={"probe.py": PROBE}, env={"SAGEMAKER_TF_API": "v1"})
    result, _ = _run(job, tmp_path, "bad")
    assert not result.ok
    assert read_failure(job).splitlines()[0] == (
        "ClientError: environment variable SAGEMAKER_TF_API='v1' is not valid: it must be one of 1, 2, auto; "
        "fix or unset it.")
    assert not os.path.exists(os.path.join(job.base_dir("algo-1"), "model", "probe.json"))


def test_the_subprocess_hook_acts_only_when_the_knob_is_1_and_runs_the_images_sitecustomize(tmp_path):
    from sagemaker_training.frameworks.tensorflow import tf1_script

    image_site = tmp_path / "image-site"
    image_site.mkdir()
    (image_site / "sitecustomize.py").write_text("import os\nos.environ['IMAGE_SITE_RAN'] = 'yes'\n")
    code = ("import builtins, json, os\n"
            "print(json.dumps({'hooked': builtins.__import__.__qualname__ != '__import__',\n"
            "                  'image_site': os.environ.get('IMAGE_SITE_RAN')}))\n")
    seen = {}
    for api in ("1", "2"):
        env = {**os.environ, "SAGEMAKER_TF_API": api, tf1_script.CODE_DIR_ENV: str(tmp_path),
               "PYTHONPATH": os.pathsep.join([tf1_script.SITE_DIR, str(image_site), os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        seen[api] = json.loads(out.stdout)
    assert seen == {"1": {"hooked": True, "image_site": "yes"}, "2": {"hooked": False, "image_site": "yes"}}


# -- local mode: the TrainingImage's tag -------------------------------------------------------


def _local_job(tmp_path, name: str, image: str, program: str, code: dict, hosts: int = 1, hyperparameters=None,
               environment=None, env=None):
    code_dir = tmp_path / f"code-{name}"
    code_dir.mkdir()
    for file_name, source in code.items():
        (code_dir / file_name).write_text(source)
    work = tmp_path / f"work-{name}"
    body = request(f"file://{tmp_path / 'out'}", {"training": IRIS_DATA}, job_name=name, image=image,
                   instance_count=hosts, environment=environment,
                   hyperparameters={"sagemaker_program": program, "sagemaker_submit_directory": str(code_dir),
                                    "sagemaker_region": "us-west-2", "sagemaker_job_name": name,
                                    **(hyperparameters or {})})
    proc, description = run_local(["--request", write_request(tmp_path, body, f"{name}.json"), "--work-dir",
                                   str(work)], env=env, timeout=180)
    return proc, description, work


@pytest.mark.parametrize("image, expected", [(TF1_IMAGE, True), (TF2_IMAGE, False)])
def test_local_mode_takes_the_api_from_the_image_tag(tmp_path, image, expected):
    proc, description, work = _local_job(tmp_path, "tag", image, "probe.py", {"probe.py": PROBE})
    assert proc.returncode == 0, explain(proc)
    assert description["TrainingJobStatus"] == "Completed"
    seen = _json(work / "algo-1" / "model" / "probe.json")
    assert seen["session"] is expected and seen["eager"] is not expected
    api = "1" if expected else "2"
    assert f"API for probe.py: SAGEMAKER_TF_API={api}" in proc.stderr


def test_local_mode_request_environment_overrides_the_tag(tmp_path):
    proc, _, work = _local_job(tmp_path, "override", TF1_IMAGE, "probe.py", {"probe.py": PROBE},
                               environment={"SAGEMAKER_TF_API": "2"})
    assert proc.returncode == 0, explain(proc)
    assert _json(work / "algo-1" / "model" / "probe.json")["eager"] is True


def test_tf1_parameter_server_job_on_two_hosts_through_local_mode(tmp_path, s3, s3_bucket):
    with open(_script("iris_ps.py"), encoding="utf-8") as f:
        script = f.read()
    bucket = s3_bucket("tf1-ps")
    proc, description, work = _local_job(tmp_path, "two-hosts", TF1_SCRIPTMODE_IMAGE, "iris_ps.py",
                                         {"iris_ps.py": script}, hosts=2,
                                         hyperparameters={"train_steps": 30, "model_dir": f"s3://{bucket}/ps/model",
                                                          "sagemaker_parameter_server_enabled": True},
                                         env={"SAGEMAKER_TF_PEER_POLL_SECONDS": "0.2"})  # quick peer polling
    assert proc.returncode == 0, explain(proc)
    assert description["TrainingJobStatus"] == "Completed"
    tasks = {}
    for host in ("algo-1", "algo-2"):
        result = _json(work / host / "output" / "data" / "result.json")
        assert result["eager"] is False, (host, result)
        tasks[host] = result["task"]["type"]
    assert tasks == {"algo-1": "master", "algo-2": "worker"}
    assert proc.stderr.count("TensorFlow 1.x API for iris_ps.py: SAGEMAKER_TF_API=1") == 2
    (version,) = os.listdir(work / "algo-1" / "model")
    assert os.path.isfile(work / "algo-1" / "model" / version / "saved_model.pb")
    # the S3 model_dir: the master's whole checkpoints (no parameter server shard left on another host)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="ps/model/").get("Contents", [])]
    assert {"ps/model/checkpoint", "ps/model/model.ckpt-30.index",
            "ps/model/model.ckpt-30.data-00000-of-00001"} <= set(keys), keys


# each script: its code dir's files and hyperparameters (short runs: what is checked is the API each host got)
TWO_HOST_SCRIPTS = {
    "iris_estimator.py": (["iris_estimator.py"], {"train_steps": 10}),
    "keras_graph.py": (["keras_graph.py"], {"epochs": 1}),
    "keras_eager.py": (["keras_eager.py"], {"epochs": 1}),
    "session_loop.py": (["session_loop.py", "linear_helpers.py"], {"steps": 20}),
}


@pytest.mark.parametrize("script", sorted(TWO_HOST_SCRIPTS))
def test_each_tf1_script_runs_on_two_hosts_through_local_mode_by_the_image_tag(tmp_path, script):
    """The scripts above, unchanged, as an SDK job with the TF 1.12 script-mode image and 2 instances:
    the tag (not auto) chooses TF 1.x on both hosts, and each host trains in the mode TF 1 gave it."""
    files, hyperparameters = TWO_HOST_SCRIPTS[script]
    code = {}
    for name in files:
        with open(_script(name), encoding="utf-8") as f:
            code[name] = f.read()
    job = "tag-" + script.removesuffix(".py").replace("_", "-")
    proc, description, work = _local_job(tmp_path, job, TF1_SCRIPTMODE_IMAGE, script, code, hosts=2,
                                         hyperparameters=hyperparameters)
    assert proc.returncode == 0, explain(proc)
    assert description["TrainingJobStatus"] == "Completed"
    assert proc.stderr.count(f"TensorFlow 1.x API for {script}: SAGEMAKER_TF_API=1") == 2
    for host in ("algo-1", "algo-2"):
        result = _json(work / host / "output" / "data" / "result.json")
        assert result["eager"] is (script == "keras_eager.py"), (host, result)  # tf.contrib.eager turns it on
