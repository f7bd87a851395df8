"""The job on disk and what a script-mode user process sees.

A real ``train`` runs a user script that records its environment, its argv,
its working directory and what ``environment.Environment()`` says inside it;
the tests compare that with the contract's SM_* variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import sagemaker_training
from helpers import read_failure, run_train, sdk_encode, succeeded, write_base_dir
from sagemaker_training.environment import Environment
from sagemaker_training.errors import ClientError

CONTRACT_VARIABLES = """
    SM_MODEL_DIR SM_CHANNELS SM_HPS SM_CURRENT_HOST SM_HOSTS SM_NUM_GPUS SM_NUM_CPUS SM_LOG_LEVEL
    SM_NETWORK_INTERFACE_NAME SM_USER_ARGS SM_INPUT_DIR SM_INPUT_CONFIG_DIR SM_OUTPUT_DIR
    SM_OUTPUT_DATA_DIR SM_OUTPUT_INTERMEDIATE_DIR SM_RESOURCE_CONFIG SM_INPUT_DATA_CONFIG
    SM_TRAINING_ENV SM_MODULE_NAME SM_MODULE_DIR SM_USER_ENTRY_POINT SM_FRAMEWORK_MODULE
    SM_FRAMEWORK_PARAMS
""".split()

RECORDER = """
    import json, os, sys
    from sagemaker_training import environment

    env = environment.Environment()
    record = {
        "argv": sys.argv,
        "cwd": os.getcwd(),
        "environ": dict(os.environ),
        "from_module": {
            "channel_input_dirs": env.channel_input_dirs,
            "hyperparameters": env.hyperparameters,
            "hosts": env.hosts,
            "current_host": env.current_host,
            "model_dir": env.model_dir,
            "num_gpus": env.num_gpus,
            "output_data_dir": env.output_data_dir,
        },
    }
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "record.json"), "w") as f:
        json.dump(record, f)
"""

HYPERPARAMETERS = {
    **sdk_encode({"batch_size": 32, "optimizer": "adam"}),
    "note": "plain text",
    "sagemaker_container_log_level": "10",
    "sagemaker_job_name": "\"env-job\"",
    "sagemaker_region": "\"us-west-2\"",
}


def _record(base_dir: str) -> dict:
    with open(os.path.join(base_dir, "model", "record.json"), encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A two-host job seen from algo-2, two channels, as a real train runs it."""
    base = write_base_dir(
        tmp_path_factory.mktemp("env"), HYPERPARAMETERS, program="record.py", code={"record.py": RECORDER},
        hosts=["algo-2", "algo-1"], current_host="algo-2", network_interface_name="ethwe",
        channels={"training": {"train.csv": "1,2\n"}, "eval-set": {}},
    )
    result = run_train(base, {"SAGEMAKER_HOST_ADDRESSES": json.dumps({"algo-1": "127.0.0.1", "algo-2": "127.0.0.1"}),
                              "SAGEMAKER_NUM_GPUS": "4"})
    assert result.returncode == 0, result.stderr
    return base, _record(base)


def test_every_contract_variable_is_set(job):
    _, record = job
    missing = [name for name in CONTRACT_VARIABLES if name not in record["environ"]]
    assert not missing


def test_paths(job):
    base, record = job
    env = record["environ"]
    assert env["SM_MODEL_DIR"] == os.path.join(base, "model")
    assert env["SM_INPUT_DIR"] == os.path.join(base, "input")
    assert env["SM_INPUT_CONFIG_DIR"] == os.path.join(base, "input", "config")
    assert env["SM_OUTPUT_DIR"] == os.path.join(base, "output")
    assert env["SM_OUTPUT_DATA_DIR"] == os.path.join(base, "output", "data")
    assert env["SM_OUTPUT_INTERMEDIATE_DIR"] == os.path.join(base, "output", "intermediate")
    assert env["SM_CHANNEL_TRAINING"] == os.path.join(base, "input", "data", "training")
    assert env["SM_CHANNEL_EVAL-SET"] == os.path.join(base, "input", "data", "eval-set")
    assert env["SM_CHANNELS"] == '["eval-set","training"]'
    for name in ("SM_MODEL_DIR", "SM_OUTPUT_DATA_DIR", "SM_OUTPUT_INTERMEDIATE_DIR"):
        assert os.path.isdir(env[name]), name  # created before the user's code runs


def test_hosts_and_resources(job):
    base, record = job
    env = record["environ"]
    assert env["SM_CURRENT_HOST"] == "algo-2"
    assert env["SM_HOSTS"] == '["algo-1","algo-2"]'
    assert env["SM_NETWORK_INTERFACE_NAME"] == "ethwe"
    assert env["SM_NUM_GPUS"] == "4"  # SAGEMAKER_NUM_GPUS: the one thing we fake
    assert env["SM_NUM_CPUS"] == str(len(os.sched_getaffinity(0)))
    assert env["SM_LOG_LEVEL"] == "10"
    assert json.loads(env["SM_RESOURCE_CONFIG"]) == {
        "current_host": "algo-2", "hosts": ["algo-2", "algo-1"], "network_interface_name": "ethwe"}
    with open(os.path.join(base, "input", "config", "inputdataconfig.json")) as f:
        assert json.loads(env["SM_INPUT_DATA_CONFIG"]) == json.load(f)
    # Compact, sorted JSON as the SageMaker training toolkit writes it.
    assert env["SM_INPUT_DATA_CONFIG"].startswith('{"eval-set":{"ContentType":"text/csv","RecordWrapperType"')


def test_hyperparameters_and_entry_point(job):
    _, record = job
    env = record["environ"]
    assert env["SM_HPS"] == '{"batch_size":32,"note":"plain text","optimizer":"adam"}'
    assert env["SM_HP_BATCH_SIZE"] == "32"
    assert env["SM_HP_OPTIMIZER"] == "adam"
    assert env["SM_HP_NOTE"] == "plain text"
    assert json.loads(env["SM_USER_ARGS"]) == ["--batch_size", "32", "--note", "plain text", "--optimizer", "adam"]
    assert record["argv"][1:] == json.loads(env["SM_USER_ARGS"])
    assert env["SM_USER_ENTRY_POINT"] == "record.py"
    assert env["SM_MODULE_NAME"] == "record"
    assert env["SM_MODULE_DIR"] == ""  # no sagemaker_submit_directory: the code was already in place
    assert env["SM_FRAMEWORK_MODULE"] == ""  # plain script mode
    assert env["SM_FRAMEWORK_PARAMS"] == "{}"


def test_training_env_is_the_whole_job(job):
    base, record = job
    training_env = json.loads(record["environ"]["SM_TRAINING_ENV"])
    assert training_env["channel_input_dirs"] == {
        "training": os.path.join(base, "input", "data", "training"),
        "eval-set": os.path.join(base, "input", "data", "eval-set"),
    }
    assert training_env["hyperparameters"] == {"batch_size": 32, "optimizer": "adam", "note": "plain text"}
    assert training_env["current_host"] == "algo-2"
    assert training_env["master_hostname"] == "algo-1"
    assert training_env["is_master"] is False
    assert training_env["job_name"] == "env-job"
    assert training_env["num_gpus"] == 4
    assert training_env["log_level"] == 10
    assert training_env["user_entry_point"] == "record.py"
    assert training_env["model_dir"] == os.path.join(base, "model")


def test_user_process_runs_in_the_code_dir_with_it_on_the_path(job):
    base, record = job
    assert record["cwd"] == os.path.join(base, "code")
    assert record["environ"]["PYTHONPATH"].split(os.pathsep)[0] == os.path.join(base, "code")


def test_environment_inside_the_user_script(job):
    base, record = job
    seen = record["from_module"]
    assert seen["channel_input_dirs"]["training"] == os.path.join(base, "input", "data", "training")
    assert seen["hyperparameters"] == {"batch_size": 32, "optimizer": "adam", "note": "plain text"}
    assert seen["hosts"] == ["algo-1", "algo-2"] and seen["current_host"] == "algo-2"
    assert seen["model_dir"] == os.path.join(base, "model")
    assert seen["num_gpus"] == 4
    assert seen["output_data_dir"] == os.path.join(base, "output", "data")


def test_gpu_count_defaults_to_what_the_machine_has(tmp_path):
    base = write_base_dir(tmp_path, program="record.py", code={"record.py": RECORDER})
    result = run_train(base)
    assert result.returncode == 0, result.stderr
    # No GPU here (and no faking): 0; a machine with GPUs reports its count.
    expected = len([n for n in os.listdir("/proc/driver/nvidia/gpus")]) if os.path.isdir("/proc/driver/nvidia/gpus") else 0
    assert _record(base)["environ"]["SM_NUM_GPUS"] == str(expected)


def test_single_host_child_gets_no_stray_tf_config(tmp_path):
    """A TF_CONFIG in train's own environment (left by an image or a shell)
    would make a one-host TensorFlow script wait for a cluster that does not exist."""
    base = write_base_dir(tmp_path, program="record.py", code={"record.py": RECORDER})
    stray = json.dumps({"cluster": {"worker": ["10.9.9.9:2222", "10.9.9.8:2222"]}, "task": {"type": "worker",
                                                                                          "index": 0}})
    result = run_train(base, {"TF_CONFIG": stray})
    assert result.returncode == 0, result.stderr
    assert "TF_CONFIG" not in _record(base)["environ"]


def test_tuning_keys_stay_with_the_toolkit(tmp_path):
    base = write_base_dir(tmp_path, {"_tuning_objective_metric": "loss", "epochs": "2"})
    env = Environment(base, {})
    assert env.hyperparameters == {"_tuning_objective_metric": "loss", "epochs": 2}  # the TF runner reads it
    assert env.user_args() == ["--epochs", "2"]
    assert env.sm_env_vars()["SM_HPS"] == '{"epochs":2}'
    assert "SM_HP__TUNING_OBJECTIVE_METRIC" not in env.sm_env_vars()


def test_settings_have_defaults(tmp_path):
    env = Environment(write_base_dir(tmp_path, {"sagemaker_region": "eu-west-1"}), {})
    assert env.setting("sagemaker_requirements") == "requirements.txt"
    assert env.region == "eu-west-1"  # a plain string works as well as an SDK-encoded one
    assert env.log_level == 20
    assert env.user_entry_point is None and env.module_name is None


def test_importing_does_no_work():
    """Importing the package reads no file, no variable, and loads neither boto3 nor a framework."""
    code = (
        "import sys\n"
        "import sagemaker_training.train, sagemaker_training.environment, sagemaker_training.supervision.processes\n"
        "import sagemaker_training.host.entry_point, sagemaker_training.host.distributed, sagemaker_training.frameworks\n"
        "import sagemaker_training.frameworks.script\n"
        "heavy = [m for m in ('boto3', 'botocore', 'tensorflow', 'mxnet', 'numpy', 'psutil') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_"))}
    env["SAGEMAKER_BASE_DIR"] = "/nonexistent/base"  # would fail if read at import
    env["SAGEMAKER_HOST_ADDRESSES"] = "{not json"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_start_up_path_stays_light():
    """What ``train`` imports before it starts the user's code (benchmarks/startup.py's budget):
    none of the stdlib modules that cost milliseconds and that it only needs on some paths."""
    code = (
        "import sys\n"
        "import sagemaker_training.train, sagemaker_training.frameworks.script\n"
        "slow = [m for m in ('dataclasses', 'inspect', 'typing', 'tempfile', 'shutil', 'glob', 'socket', 'ast',\n"
        "                    'random', 'hashlib', 'argparse') if m in sys.modules]\n"
        "assert not slow, slow\n"
    )
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(
                                os.path.abspath(sagemaker_training.__file__)))})
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------
# Missing and malformed config files: a one-line ClientError, nothing run

GOOD = {
    "hyperparameters.json": {"sagemaker_program": "\"marker.py\""},
    "resourceconfig.json": {"current_host": "algo-1", "hosts": ["algo-1"]},
    "inputdataconfig.json": {"training": {"TrainingInputMode": "File"}},
}

BROKEN = [
    ("hyperparameters.json", None, "missing"),
    ("hyperparameters.json", "{\"a\": ", "not valid JSON"),
    ("hyperparameters.json", "[\"a\"]", "must be a JSON object"),
    ("resourceconfig.json", None, "missing"),
    ("resourceconfig.json", "current_host=algo-1", "not valid JSON"),
    ("resourceconfig.json", "[]", "must be a JSON object"),
    ("resourceconfig.json", "{\"current_host\": \"algo-1\"}", "\"hosts\" must be a non-empty list"),
    ("resourceconfig.json", "{\"current_host\": \"algo-1\", \"hosts\": []}", "\"hosts\" must be a non-empty list"),
    ("resourceconfig.json", "{\"current_host\": \"algo-3\", \"hosts\": [\"algo-1\", \"algo-2\"]}",
     "\"current_host\" must be one of \"hosts\" (algo-1, algo-2)"),
    ("resourceconfig.json", "{\"current_host\": \"algo-1\", \"hosts\": [\"algo-1\", \"algo-1\"]}", "lists a host twice"),
    ("inputdataconfig.json", None, "missing"),
    ("inputdataconfig.json", "", "not valid JSON"),
    ("inputdataconfig.json", "[\"training\"]", "must map each channel name to an object"),
    ("inputdataconfig.json", "{\"training\": \"File\"}", "must map each channel name to an object"),
]


@pytest.mark.parametrize("name, content, says", BROKEN,
                         ids=[f"{n.split('.')[0]}-{i}" for i, (n, _, _) in enumerate(BROKEN)])
def test_broken_config_is_a_one_line_client_error(tmp_path, name, content, says):
    base = str(tmp_path)
    config = os.path.join(base, "input", "config")
    os.makedirs(config)
    os.makedirs(os.path.join(base, "code"))
    with open(os.path.join(base, "code", "marker.py"), "w") as f:
        f.write("open('ran', 'w').close()\n")
    for file_name, good in GOOD.items():
        if file_name == name and content is None:
            continue
        with open(os.path.join(config, file_name), "w") as f:
            f.write(content if file_name == name else json.dumps(good))

    result = run_train(base)

    assert result.returncode != 0
    failure = read_failure(base)
    assert failure.endswith("\n") and failure.count("\n") == 1, failure  # one line
    assert failure.startswith("ClientError: input/config/" + name), failure
    assert says in failure
    assert failure.splitlines()[0] in result.stderr  # the log says it too
    assert not os.path.exists(os.path.join(base, "code", "ran"))
    assert not succeeded(base)


def test_config_errors_from_the_environment_class(tmp_path):
    base = write_base_dir(tmp_path, hosts=["algo-1"], current_host="algo-9")
    with pytest.raises(ClientError, match="current_host"):
        Environment(base, {})
