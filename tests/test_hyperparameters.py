"""Hyperparameters: both client encodings, the sagemaker_* split, and how user code gets them.

The unit tests pin the decoding and rendering rules; the last tests run a real
``train`` and read back what the user process was given.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import run_train, sdk_encode, write_base_dir
from sagemaker_training.core import hyperparameters as hp

# What the SageMaker Python SDK writes (every value JSON-encoded) and what it decodes to.
SDK = {
    "program_name": ("\"iris.py\"", "iris.py"),
    "epochs": ("1000", 1000),
    "learning_rate": ("0.05", 0.05),
    "layers": ("[1, 2]", [1, 2]),
    "shuffle": ("true", True),
    "nothing": ("null", None),
    "optimizer": ("{\"name\": \"sgd\", \"momentum\": 0.9}", {"name": "sgd", "momentum": 0.9}),
    "numeric_string": ("\"42\"", "42"),
}

# What API, console and Step Functions clients send: plain strings.
PLAIN = {
    "program_name": ("iris.py", "iris.py"),
    "comment": ("some text", "some text"),
    "epochs": ("1000", 1000),
    "layers": ("[1, 2]", [1, 2]),
    "shuffle": ("true", True),
    "capitalised": ("True", "True"),
    "path": ("s3://bucket/key", "s3://bucket/key"),
    "half_json": ("[1, 2", "[1, 2"),
    "empty": ("", ""),
}


@pytest.mark.parametrize("table", [SDK, PLAIN], ids=["sdk", "plain"])
def test_decode_both_encodings(table):
    decoded = hp.decode({name: raw for name, (raw, _) in table.items()})
    assert decoded == {name: value for name, (_, value) in table.items()}
    for name, (_, value) in table.items():
        assert type(decoded[name]) is type(value), name


@pytest.mark.parametrize("raw", ["validation:accuracy", "123", "\"quoted\"", "[1]", "true"])
def test_tuning_objective_metric_is_never_json(raw):
    assert hp.decode({"_tuning_objective_metric": raw}) == {"_tuning_objective_metric": raw}


def test_split_keeps_file_order_and_separates_toolkit_settings():
    decoded = hp.decode({"zeta": "1", "sagemaker_program": "\"t.py\"", "alpha": "2",
                         "sagemaker_region": "\"us-west-2\"", "mid": "x"})
    user, toolkit = hp.split(decoded)
    assert list(user) == ["zeta", "alpha", "mid"]
    assert toolkit == {"sagemaker_program": "t.py", "sagemaker_region": "us-west-2"}


def test_cmd_args_sorted_by_name_as_the_sagemaker_toolkit():
    # sagemaker_training.mapping.to_cmd_args: sorted keys, "-x" for a one-character name
    assert hp.to_cmd_args({"zeta": 1, "alpha": "a b", "flag": True, "layers": [1, 2], "none": None,
                           "opt": {"b": 2, "a": "x"}, "b": 3, "B": 4}) == [
        "-B", "4", "--alpha", "a b", "-b", "3", "--flag", "True", "--layers", "[1, 2]", "--none", "",
        "--opt", "a=x,b=2", "--zeta", "1",
    ]


@pytest.mark.parametrize("value, env_value, arg_value", [
    ("iris.py", "iris.py", "iris.py"),
    ("some text", "some text", "some text"),
    (1000, "1000", "1000"),
    (0.05, "0.05", "0.05"),
    (True, "true", "True"),
    (False, "false", "False"),
    (None, "", ""),
    ([1, 2], "[1,2]", "[1, 2]"),
    ({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}', "a=[1, 2],b=1"),
    (["é"], '["\\u00e9"]', "['é']"),
    ("é", "é", "é"),
])
def test_render_as_the_sagemaker_toolkit(value, env_value, arg_value):
    # SM_* values: strings as they are, None empty, anything else compact sorted ASCII JSON
    # (sagemaker_training.mapping.to_env_vars); arguments: dicts as k=v pairs, else str().
    assert hp.render(value) == env_value
    assert hp.render_arg(value) == arg_value


@pytest.mark.parametrize("value, expected", [
    ("true", True), ("True", True), ("1", True), ("yes", True), (True, True), (1, True),
    ("false", False), ("0", False), ("", False), (False, False), (0, False), (None, False),
])
def test_as_bool(value, expected):
    assert hp.as_bool(value) is expected


# ---------------------------------------------------------------------------
# Through a real train: what the user process receives

DUMP = """
    import json, os, sys
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "seen.json"), "w") as f:
        json.dump({"argv": sys.argv[1:], "env": {k: v for k, v in os.environ.items() if k.startswith("SM_")}}, f)
"""


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """One job mixing both encodings, tuning keys and toolkit settings."""
    hyperparameters = {
        **sdk_encode({"epochs": 1000, "layers": [1, 2], "optimizer": {"name": "sgd", "lr": 0.1},
                      "program_name": "iris.py"}),
        "comment": "some text",
        "shuffle": "true",
        "plain_count": "7",
        "_tuning_objective_metric": "validation:accuracy",
        "sagemaker_container_log_level": "20",
        "sagemaker_job_name": "\"job-1\"",
        "sagemaker_custom_setting": "\"x\"",
    }
    base = write_base_dir(tmp_path_factory.mktemp("hps"), hyperparameters, program="dump.py",
                          code={"dump.py": DUMP})
    result = run_train(base)
    assert result.returncode == 0, result.stderr
    with open(os.path.join(base, "model", "seen.json")) as f:
        return json.load(f)


def test_user_args_sorted_by_name_without_toolkit_keys(seen):
    assert seen["argv"] == [
        "--comment", "some text", "--epochs", "1000", "--layers", "[1, 2]", "--optimizer", "lr=0.1,name=sgd",
        "--plain_count", "7", "--program_name", "iris.py", "--shuffle", "True",
    ]
    assert json.loads(seen["env"]["SM_USER_ARGS"]) == seen["argv"]


def test_sm_hp_values_as_the_toolkit_renders_them(seen):
    env = seen["env"]
    assert {k: v for k, v in env.items() if k.startswith("SM_HP_")} == {
        "SM_HP_EPOCHS": "1000",
        "SM_HP_LAYERS": "[1,2]",
        "SM_HP_OPTIMIZER": '{"lr":0.1,"name":"sgd"}',
        "SM_HP_PROGRAM_NAME": "iris.py",
        "SM_HP_COMMENT": "some text",
        "SM_HP_SHUFFLE": "true",
        "SM_HP_PLAIN_COUNT": "7",
    }
    assert env["SM_HPS"] == (
        '{"comment":"some text","epochs":1000,"layers":[1,2],"optimizer":{"lr":0.1,"name":"sgd"},'
        '"plain_count":7,"program_name":"iris.py","shuffle":true}'
    )


def test_toolkit_settings_are_framework_params_not_hyperparameters(seen):
    env = seen["env"]
    assert json.loads(env["SM_FRAMEWORK_PARAMS"]) == {"sagemaker_custom_setting": "x"}
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["job_name"] == "job-1"
    assert not any(k.startswith(("sagemaker_", "_tuning")) for k in training_env["hyperparameters"])
