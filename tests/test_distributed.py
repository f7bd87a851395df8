"""Hosts of a distributed job: resolution, and the frameworks' cluster specs.

Host resolution runs against the machine's real resolver (and through a real
``train`` for the unresolvable host); TF_CONFIG and DMLC_* are pure functions.
"""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from helpers import read_failure, run_train, write_base_dir
from sagemaker_training.host import distributed
from sagemaker_training.errors import ClientError, PlatformError

ADDRESSES = {"algo-1": "10.0.0.1", "algo-2": "10.0.0.2", "algo-3": "10.0.0.3"}

MARK = """
    import os
    open(os.path.join(os.environ["SM_MODEL_DIR"], "ran"), "w").close()
"""


# ---------------------------------------------------------------------------
# Resolution


def test_unresolvable_host_fails_naming_it_in_bounded_time(tmp_path):
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": MARK}, hosts=["algo-1", "algo-2"])
    started = time.monotonic()
    result = run_train(base, {"SAGEMAKER_HOST_WAIT_SECONDS": "1",
                              "SAGEMAKER_HOST_ADDRESSES": json.dumps({"algo-1": "127.0.0.1"})}, timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    head = read_failure(base).splitlines()[0]
    assert head.startswith("PlatformError: host algo-2 did not resolve within 1s")
    assert "SAGEMAKER_HOST_WAIT_SECONDS" in head and "run the job again" in head
    assert elapsed < 10
    assert not os.path.exists(os.path.join(base, "model", "ran"))


def test_host_addresses_override_dns_end_to_end(tmp_path):
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": MARK}, hosts=["algo-1", "algo-2"])
    result = run_train(base, {"SAGEMAKER_HOST_WAIT_SECONDS": "1",
                              "SAGEMAKER_HOST_ADDRESSES": json.dumps({"algo-1": "127.0.0.1", "algo-2": "127.0.0.2"})})
    assert result.returncode == 0, result.stderr
    assert os.path.exists(os.path.join(base, "model", "ran"))


def test_single_host_job_resolves_nothing(tmp_path):
    # algo-1 does not resolve here: a one-host job must not need it to.
    base = write_base_dir(tmp_path, program="train.py", code={"train.py": MARK})
    result = run_train(base, {"SAGEMAKER_HOST_WAIT_SECONDS": "0"})
    assert result.returncode == 0, result.stderr


def test_resolve_through_dns_and_overrides():
    environ = {"SAGEMAKER_HOST_ADDRESSES": json.dumps({"algo-2": "192.0.2.7"}), "SAGEMAKER_HOST_WAIT_SECONDS": "5"}
    assert distributed.resolve_hosts(["localhost", "algo-2"], environ) == {
        "localhost": socket.gethostbyname("localhost"), "algo-2": "192.0.2.7"}


def test_resolve_gives_up_after_the_bound_with_backoff():
    sleeps = []
    with pytest.raises(PlatformError, match="host algo-9.invalid did not resolve within 2s"):
        distributed.resolve_hosts(["algo-9.invalid"], {"SAGEMAKER_HOST_WAIT_SECONDS": "2"}, sleep=sleeps.append)
    assert sleeps[:3] == [0.2, 0.4, 0.8]  # retried, backing off


def test_resolve_waits_for_a_host_that_appears_late(monkeypatch):
    """The first lookups fail, as for a host whose DNS record is not there yet."""
    appear_after = 3
    table = {}
    calls = []
    real = socket.gethostbyname

    def sleep(seconds):
        calls.append(seconds)
        if len(calls) == appear_after:
            table["algo-2"] = "127.0.0.1"

    monkeypatch.setattr(socket, "gethostbyname", lambda host: table[host] if host in table else real(f"{host}.invalid"))
    assert distributed.resolve_hosts(["algo-2"], {"SAGEMAKER_HOST_WAIT_SECONDS": "60"}, sleep=sleep) == {
        "algo-2": "127.0.0.1"}
    assert len(calls) == appear_after


@pytest.mark.parametrize("raw", ["{not json", "[\"127.0.0.1\"]"])
def test_bad_address_table_is_a_client_error(raw):
    with pytest.raises(ClientError, match="SAGEMAKER_HOST_ADDRESSES must be a JSON object"):
        distributed.resolve_hosts(["algo-1"], {"SAGEMAKER_HOST_ADDRESSES": raw})


def test_bad_number_setting_is_a_client_error():
    with pytest.raises(ClientError, match="SAGEMAKER_HOST_WAIT_SECONDS='soon' is not valid: it must be a number"):
        distributed.resolve_hosts(["algo-1"], {"SAGEMAKER_HOST_WAIT_SECONDS": "soon"})


def test_fractional_host_wait_is_accepted():
    # it was read as an integer: 1.5 was an error
    assert distributed.resolve_hosts(["localhost"], {"SAGEMAKER_HOST_WAIT_SECONDS": "1.5"}) == {
        "localhost": socket.gethostbyname("localhost")}


def test_port_pushed_past_65535_by_the_stride_is_a_client_error():
    with pytest.raises(ClientError, match="SAGEMAKER_PORT_STRIDE=40000 moves host algo-2's port 30000 to 70000"):
        distributed.tf_config_multi_worker(["algo-1", "algo-2"], "algo-1", ADDRESSES,
                                           environ={"SAGEMAKER_TF_PORT": "30000", "SAGEMAKER_PORT_STRIDE": "40000"})


# ---------------------------------------------------------------------------
# TF_CONFIG: parameter servers


def test_tf_config_parameter_servers_for_every_host():
    hosts = ["algo-3", "algo-1", "algo-2"]  # any order: the first sorted is the master
    cluster = {
        "master": ["10.0.0.1:2222"],
        "ps": ["10.0.0.1:2223", "10.0.0.2:2223", "10.0.0.3:2223"],
        "worker": ["10.0.0.2:2222", "10.0.0.3:2222"],
    }
    expected_tasks = {"algo-1": {"type": "master", "index": 0}, "algo-2": {"type": "worker", "index": 0},
                      "algo-3": {"type": "worker", "index": 1}}
    for host, task in expected_tasks.items():
        config = distributed.tf_config_parameter_servers(hosts, host, ADDRESSES, environ={})
        assert config == {"cluster": cluster, "environment": "cloud", "task": task}
        ps = distributed.tf_config_parameter_servers(hosts, host, ADDRESSES, environ={}, task_type="ps")
        assert ps["cluster"] == cluster
        assert ps["task"] == {"type": "ps", "index": sorted(hosts).index(host)}


def test_tf_config_single_host_has_no_workers():
    config = distributed.tf_config_parameter_servers(["algo-1"], "algo-1", {}, environ={})
    assert config["cluster"] == {"master": ["algo-1:2222"], "ps": ["algo-1:2223"]}  # no address: the name
    assert config["task"] == {"type": "master", "index": 0}


def test_tf_config_ports_and_stride():
    environ = {"SAGEMAKER_TF_PORT": "3000", "SAGEMAKER_TF_PS_PORT": "4000", "SAGEMAKER_PORT_STRIDE": "10"}
    local = {h: "127.0.0.1" for h in ADDRESSES}
    config = distributed.tf_config_parameter_servers(list(ADDRESSES), "algo-3", local, environ=environ)
    assert config["cluster"] == {
        "master": ["127.0.0.1:3000"],
        "ps": ["127.0.0.1:4000", "127.0.0.1:4010", "127.0.0.1:4020"],
        "worker": ["127.0.0.1:3010", "127.0.0.1:3020"],
    }
    assert config["task"] == {"type": "worker", "index": 1}


def test_tf_config_multi_worker_mirrored():
    for index, host in enumerate(["algo-1", "algo-2", "algo-3"]):
        config = distributed.tf_config_multi_worker(["algo-2", "algo-3", "algo-1"], host, ADDRESSES, environ={})
        assert config == {
            "cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222", "10.0.0.3:2222"]},
            "environment": "cloud",
            "task": {"type": "worker", "index": index},
        }
    strided = distributed.tf_config_multi_worker(["algo-1", "algo-2"], "algo-2", ADDRESSES,
                                                 environ={"SAGEMAKER_PORT_STRIDE": "100"})
    assert strided["cluster"]["worker"] == ["10.0.0.1:2222", "10.0.0.2:2322"]


# ---------------------------------------------------------------------------
# MXNet's DMLC_* variables


@pytest.mark.parametrize("role", ["scheduler", "server", "worker"])
def test_dmlc_env(role):
    env = distributed.mxnet_env(["algo-3", "algo-2", "algo-1"], "algo-2", ADDRESSES, role, environ={})
    assert env == {
        "DMLC_ROLE": role,
        "DMLC_PS_ROOT_URI": "10.0.0.1",  # the first host sorted runs the scheduler
        "DMLC_PS_ROOT_PORT": "8000",
        "DMLC_NUM_SERVER": "3",
        "DMLC_NUM_WORKER": "3",
        "DMLC_NODE_HOST": "10.0.0.2",
    }
    assert all(isinstance(v, str) for v in env.values())  # environment values


def test_dmlc_port_override():
    env = distributed.mxnet_env(["algo-1"], "algo-1", {}, "worker", environ={"SAGEMAKER_MXNET_PORT": "9100"})
    assert env["DMLC_PS_ROOT_PORT"] == "9100" and env["DMLC_PS_ROOT_URI"] == "algo-1"
    assert env["DMLC_NUM_SERVER"] == "1"
