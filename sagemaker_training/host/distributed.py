"""Hosts of a distributed job: addresses, ports, and the frameworks' cluster specs.

On the platform every host name (``algo-1`` ...) resolves through DNS, maybe
late; :func:`resolve_hosts` retries until ``SAGEMAKER_HOST_WAIT_SECONDS``
(default 300) and then fails naming the host.

Several hosts can share one machine (local mode, tests): then
``SAGEMAKER_HOST_ADDRESSES`` (a JSON object host -> address) replaces DNS,
and ``SAGEMAKER_PORT_STRIDE`` shifts every port of the i-th host (sorted) by
``i * stride`` so that the hosts' servers do not collide. Base ports:
``SAGEMAKER_TF_PORT`` (2222, master and workers), ``SAGEMAKER_TF_PS_PORT``
(2223, parameter servers), ``SAGEMAKER_MXNET_PORT`` (8000, the scheduler).

We only *configure* the frameworks' own engines here (TF_CONFIG for TF's gRPC
servers, DMLC_* for MXNet's ps-lite); nothing here moves tensors.
"""

from __future__ import annotations

import os
import time

from ..core import guarded_json, settings
from ..errors import ClientError, PlatformError

HOST_ADDRESSES_ENV = "SAGEMAKER_HOST_ADDRESSES"


def host_overrides(environ=None) -> dict:
    environ = os.environ if environ is None else environ
    raw = environ.get(HOST_ADDRESSES_ENV)
    if not raw:
        return {}
    try:
        table = guarded_json.loads(raw)
    except (ValueError, guarded_json.TooDeep):
        table = None
    if not isinstance(table, dict):
        raise ClientError(f'{HOST_ADDRESSES_ENV} must be a JSON object such as {{"algo-1": "127.0.0.1"}}.')
    return table


def resolve_hosts(hosts, environ=None, sleep=time.sleep) -> dict:
    """host -> IP address for every host, waiting for DNS up to the bound."""
    import socket  # noqa: PLC0415 - only distributed jobs resolve hosts; keeps it off every start

    environ = os.environ if environ is None else environ
    overrides = host_overrides(environ)
    wait = settings.seconds("SAGEMAKER_HOST_WAIT_SECONDS", 300, environ=environ)
    deadline = time.monotonic() + wait
    addresses = {}
    for host in hosts:
        if host in overrides:
            addresses[host] = overrides[host]
            continue
        delay = 0.2
        while True:
            try:
                addresses[host] = socket.gethostbyname(host)
                break
            except (socket.gaierror, UnicodeError) as exc:
                if time.monotonic() + delay > deadline:
                    raise PlatformError(
                        f"host {host} did not resolve within {wait:g}s ({exc}); the other hosts of the job "
                        f"may not have started. SAGEMAKER_HOST_WAIT_SECONDS sets the bound."
                    )
                sleep(delay)
                delay = min(delay * 2, 5.0)
    return addresses


# The ports of one host, each a setting with its default; the i-th host (sorted) has each moved by
# i * SAGEMAKER_PORT_STRIDE. Several hosts on one machine (local mode) get PORTS_PER_HOST
# consecutive ports each from one block: packed_ports_environ.
PORT_SETTINGS = (("SAGEMAKER_TF_PORT", 2222),  # TF master and workers
                 ("SAGEMAKER_TF_PS_PORT", 2223),  # TF parameter servers
                 ("SAGEMAKER_MXNET_PORT", 8000))  # the MXNet (ps-lite) scheduler
STRIDE_ENV = "SAGEMAKER_PORT_STRIDE"
PORTS_PER_HOST = len(PORT_SETTINGS)


def packed_ports_environ(base_port: int) -> dict:
    """The variables that give the i-th host the ports ``base_port + i * PORTS_PER_HOST + k``
    (k: the setting's place in :data:`PORT_SETTINGS`), so a block of ``hosts * PORTS_PER_HOST``
    ports from ``base_port`` holds every host's."""
    return {STRIDE_ENV: str(PORTS_PER_HOST),
            **{name: str(base_port + k) for k, (name, _) in enumerate(PORT_SETTINGS)}}


def _port_setting(name: str, environ=None) -> int:
    return settings.port(name, dict(PORT_SETTINGS)[name], environ=environ)


def port_for(hosts, host: str, base: int, environ=None) -> int:
    environ = os.environ if environ is None else environ
    stride = settings.number(STRIDE_ENV, 0, integer=True, environ=environ)
    port = base + sorted(hosts).index(host) * stride
    if port > 65535:
        raise ClientError(f"SAGEMAKER_PORT_STRIDE={stride} moves host {host}'s port {base} to {port}, past 65535: "
                          "choose a smaller stride or base port.")
    return port


def tf_ports(environ=None) -> tuple[int, int]:
    environ = os.environ if environ is None else environ
    return _port_setting("SAGEMAKER_TF_PORT", environ), _port_setting("SAGEMAKER_TF_PS_PORT", environ)


def tf_config_parameter_servers(hosts, current_host, addresses, environ=None, task_type=None) -> dict:
    """TF_CONFIG for parameter-server training.

    The first host is the master (its estimator's chief), the others are
    workers, and every host also runs a parameter server.
    """
    hosts = sorted(hosts)
    worker_port, ps_port = tf_ports(environ)

    def where(host, base):
        return f"{addresses.get(host, host)}:{port_for(hosts, host, base, environ)}"

    cluster = {
        "master": [where(hosts[0], worker_port)],
        "ps": [where(h, ps_port) for h in hosts],
    }
    if len(hosts) > 1:
        cluster["worker"] = [where(h, worker_port) for h in hosts[1:]]
    if task_type == "ps":
        task = {"type": "ps", "index": hosts.index(current_host)}
    elif current_host == hosts[0]:
        task = {"type": "master", "index": 0}
    else:
        task = {"type": "worker", "index": hosts.index(current_host) - 1}
    return {"cluster": cluster, "environment": "cloud", "task": task}


def tf_config_multi_worker(hosts, current_host, addresses, environ=None) -> dict:
    """TF_CONFIG for MultiWorkerMirroredStrategy: every host is a worker."""
    hosts = sorted(hosts)
    worker_port, _ = tf_ports(environ)
    workers = [f"{addresses.get(h, h)}:{port_for(hosts, h, worker_port, environ)}" for h in hosts]
    return {"cluster": {"worker": workers}, "environment": "cloud",
            "task": {"type": "worker", "index": hosts.index(current_host)}}


def mxnet_env(hosts, current_host, addresses, role: str, environ=None) -> dict:
    """DMLC_* variables for MXNet's ps-lite kvstore.

    The first host (sorted) runs the scheduler; every host runs a server and a
    worker.
    """
    environ = os.environ if environ is None else environ
    hosts = sorted(hosts)
    scheduler = hosts[0]
    return {
        "DMLC_ROLE": role,
        "DMLC_PS_ROOT_URI": addresses.get(scheduler, scheduler),
        "DMLC_PS_ROOT_PORT": str(_port_setting("SAGEMAKER_MXNET_PORT", environ)),
        "DMLC_NUM_SERVER": str(len(hosts)),
        "DMLC_NUM_WORKER": str(len(hosts)),
        "DMLC_NODE_HOST": addresses.get(current_host, current_host),
    }
