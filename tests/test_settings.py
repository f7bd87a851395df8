"""settings: the one reader of the toolkit's SAGEMAKER_* numbers, and the knobs that go through it.

A bad value is a ClientError naming the variable and the value, never a
silent default; unset or empty is the default.
"""

from __future__ import annotations

import pytest

from helpers import read_failure, run_train, succeeded, write_base_dir
from sagemaker_training.host import distributed
from sagemaker_training import environment
from sagemaker_training.core import settings
from sagemaker_training.errors import ClientError


@pytest.mark.parametrize("raw, expected", [(None, 7.0), ("", 7.0), ("  ", 7.0), ("1.5", 1.5), (" 3 ", 3.0),
                                           ("0", 0.0), ("1e3", 1000.0)])
def test_seconds_accepts_numbers_and_defaults_when_unset(raw, expected):
    environ = {} if raw is None else {"SAGEMAKER_X_SECONDS": raw}
    assert settings.seconds("SAGEMAKER_X_SECONDS", 7.0, environ=environ) == expected


@pytest.mark.parametrize("raw, wanted", [
    ("abc", "a number >= 0"), ("-1", "a number >= 0"), ("nan", "a number >= 0"), ("inf", "a number >= 0"),
    ("1,5", "a number >= 0"),
])
def test_seconds_refuses_what_is_not_a_duration(raw, wanted):
    with pytest.raises(ClientError) as raised:
        settings.seconds("SAGEMAKER_X_SECONDS", 7.0, environ={"SAGEMAKER_X_SECONDS": raw})
    assert str(raised.value) == (f"environment variable SAGEMAKER_X_SECONDS={raw!r} is not valid: "
                                 f"it must be {wanted}; fix or unset it.")


@pytest.mark.parametrize("raw", ["0", "65536", "22.5", "http", "-80"])
def test_port_refuses_what_is_not_a_port(raw):
    with pytest.raises(ClientError, match=rf"SAGEMAKER_TF_PORT='{raw}' is not valid: it must be a whole number "
                                          r">= 1 and <= 65535"):
        distributed.tf_ports({"SAGEMAKER_TF_PORT": raw})


def test_ports_read_through_settings():
    assert distributed.tf_ports({"SAGEMAKER_TF_PORT": "3000", "SAGEMAKER_TF_PS_PORT": "3001.0"}) == (3000, 3001)
    with pytest.raises(ClientError, match="SAGEMAKER_TF_PS_PORT='x'"):
        distributed.tf_ports({"SAGEMAKER_TF_PS_PORT": "x"})
    with pytest.raises(ClientError, match="SAGEMAKER_MXNET_PORT='99999'"):
        distributed.mxnet_env(["algo-1"], "algo-1", {}, "worker", environ={"SAGEMAKER_MXNET_PORT": "99999"})


@pytest.mark.parametrize("raw", ["abc", "-10", "2.5"])
def test_port_stride_must_be_a_whole_number(raw):
    with pytest.raises(ClientError, match=rf"SAGEMAKER_PORT_STRIDE='{raw}' is not valid: it must be a whole number"):
        distributed.port_for(["algo-1", "algo-2"], "algo-2", 2222, {"SAGEMAKER_PORT_STRIDE": raw})


def test_host_wait_seconds():
    # 1.5 was refused ("not an integer"); abc is refused naming the variable and its value
    assert distributed.resolve_hosts(["localhost"], {"SAGEMAKER_HOST_WAIT_SECONDS": "1.5"})
    with pytest.raises(ClientError, match="SAGEMAKER_HOST_WAIT_SECONDS='abc' is not valid"):
        distributed.resolve_hosts(["localhost"], {"SAGEMAKER_HOST_WAIT_SECONDS": "abc"})


@pytest.mark.parametrize("raw", ["two", "-1", "1.5"])
def test_bad_gpu_count_is_refused_not_ignored(raw):
    # it was silently ignored (the machine's GPUs were counted instead)
    with pytest.raises(ClientError, match=rf"SAGEMAKER_NUM_GPUS='{raw}' is not valid: it must be a whole number"):
        environment.count_gpus({"SAGEMAKER_NUM_GPUS": raw})


def test_gpu_count_override():
    assert environment.count_gpus({"SAGEMAKER_NUM_GPUS": "4"}) == 4
    assert environment.count_gpus({"SAGEMAKER_NUM_GPUS": "0"}) == 0


def test_bad_knob_fails_the_job_before_the_code_runs(tmp_path):
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": "open('ran', 'w').close()\n"})
    result = run_train(base, {"SAGEMAKER_NUM_GPUS": "lots"})
    assert result.returncode == 1
    assert read_failure(base) == ("ClientError: environment variable SAGEMAKER_NUM_GPUS='lots' is not valid: "
                                  "it must be a whole number >= 0; fix or unset it.\n")
    assert not succeeded(base)
    assert not (tmp_path / "code" / "ran").exists()
