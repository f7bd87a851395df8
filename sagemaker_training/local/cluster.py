"""Several hosts of one training job as real process trees on this machine.

The platform gives every host its own container, base dir and DNS name. On
one machine (local mode, tests, benchmarks) :class:`LocalCluster` does the
same with processes:

* a base dir per host (``<work_dir>/algo-1`` ...) with the three config files
  and a copy of every channel in ``input/data/<channel>``;
* every host's ``train`` started as its own process (its own session, so its
  children form their own tree), with ``SAGEMAKER_BASE_DIR`` pointing at its
  base dir, ``SAGEMAKER_HOST_ADDRESSES`` mapping every host name to
  127.0.0.1 (host names resolve without DNS), and free ports shifted per
  host by ``SAGEMAKER_PORT_STRIDE`` so the hosts' servers never collide; the
  job's block of ports is reserved on this machine (:func:`reserve_port_block`,
  a lock file per port) while its hosts run, so two jobs started at once (two
  local commands, two jobs of ``serve``) never share a port;
* the hosts are supervised like any children (processes.py): output streams
  with a ``[algo-N]`` prefix, when one host fails the others are stopped
  (SIGTERM, grace, SIGKILL), and a ``max_run`` deadline stops them all.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass

from ..supervision.processes import Outcome, ProcessSpec, Supervisor
from ..host.distributed import PORTS_PER_HOST, packed_ports_environ
from ..supervision.report import outcome_report
from .ports import PortBlock, reserve_port_block



def host_names(count: int) -> list[str]:
    return [f"algo-{i}" for i in range(1, count + 1)]


def encode_hyperparameters(values: dict) -> dict:
    """JSON-encode every value, as the SageMaker Python SDK does."""
    return {str(k): json.dumps(v) for k, v in values.items()}


@dataclass
class ClusterResult:
    outcome: Outcome
    host_dirs: dict

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def exit_code(self) -> int:
        return outcome_report(self.outcome, who="the job")[1]

    @property
    def failure_reason(self) -> str | None:
        """Why the run did not succeed (the failing host's own output/failure, prefixed with its name)."""
        return outcome_report(self.outcome, who="the job")[0]


class LocalCluster:
    def __init__(self, work_dir: str, host_count: int = 1, framework: str | None = None,
                 env: dict | None = None, grace: float = 10.0, python: str | None = None,
                 network_interface_name: str = "lo"):
        if host_count < 1:
            raise ValueError("host_count must be at least 1")
        self.work_dir = os.path.abspath(work_dir)
        self.hosts = host_names(host_count)
        self.framework = framework
        self.extra_env = dict(env or {})  # name -> value, or None to unset it
        self.grace = grace
        self.python = python or sys.executable
        self.network_interface_name = network_interface_name
        self.channels: dict[str, dict] = {}
        self.ports: PortBlock | None = None  # reserved by specs(), released when run() ends

    def base_dir(self, host: str) -> str:
        return os.path.join(self.work_dir, host)

    # -- preparing the hosts' disks ------------------------------------------
    def write_config(self, hyperparameters: dict, input_data_config: dict | None = None, encode: bool = True):
        """Write every host's config files. ``hyperparameters`` are Python
        values JSON-encoded like the SDK does (``encode=False``: already strings)."""
        hps = encode_hyperparameters(hyperparameters) if encode else dict(hyperparameters)
        if input_data_config is not None:
            self.channels = {name: dict(cfg) for name, cfg in input_data_config.items()}
        for host in self.hosts:
            config_dir = os.path.join(self.base_dir(host), "input", "config")
            os.makedirs(config_dir, exist_ok=True)
            for sub in ("model", "output", os.path.join("input", "data")):
                os.makedirs(os.path.join(self.base_dir(host), sub), exist_ok=True)
            _write_json(os.path.join(config_dir, "hyperparameters.json"), hps)
            _write_json(os.path.join(config_dir, "resourceconfig.json"), {
                "current_host": host, "hosts": self.hosts,
                "network_interface_name": self.network_interface_name,
            })
        self._write_input_data_config()

    def add_channel(self, name: str, source: str, content_type: str | None = None) -> None:
        """Copy ``source`` (a file or directory) into every host's channel dir."""
        for host in self.hosts:
            target = os.path.join(self.base_dir(host), "input", "data", name)
            if os.path.isdir(source):
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                os.makedirs(target, exist_ok=True)
                shutil.copy2(source, target)
        config = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated",
                  "RecordWrapperType": "None"}
        if content_type:
            config["ContentType"] = content_type
        self.channels.setdefault(name, config)
        self._write_input_data_config()

    def _write_input_data_config(self):
        for host in self.hosts:
            config_dir = os.path.join(self.base_dir(host), "input", "config")
            if os.path.isdir(config_dir):
                _write_json(os.path.join(config_dir, "inputdataconfig.json"), self.channels)

    # -- running -----------------------------------------------------------
    def host_environ(self, host: str, base_port: int) -> dict:
        env = dict(os.environ)
        env.update({
            "SAGEMAKER_BASE_DIR": self.base_dir(host),
            "SAGEMAKER_HOST_ADDRESSES": json.dumps({h: "127.0.0.1" for h in self.hosts}),
            **packed_ports_environ(base_port),
            "SAGEMAKER_TERMINATION_GRACE_SECONDS": str(self.grace),
            "SAGEMAKER_MPI_RENDEZVOUS_DIR": os.path.join(self.work_dir, ".mpi"),  # MPI's launch without SSH
        })
        if self.framework:
            env["SAGEMAKER_FRAMEWORK"] = self.framework
        else:
            env.pop("SAGEMAKER_FRAMEWORK", None)
        for name, value in self.extra_env.items():  # None: the variable is unset for the hosts
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def reserve_ports(self) -> PortBlock:
        """This cluster's ports (every host's ``PORTS_PER_HOST``), held until :meth:`release_ports`."""
        if self.ports is None:
            self.ports = reserve_port_block(PORTS_PER_HOST * len(self.hosts))
        return self.ports

    def release_ports(self) -> None:
        if self.ports is not None:
            self.ports.release()
            self.ports = None

    def specs(self) -> list[ProcessSpec]:
        base_port = self.reserve_ports().base
        return [
            ProcessSpec(
                name=host,
                argv=[self.python, "-m", "sagemaker_training.train"],
                env=self.host_environ(host, base_port),
                cwd=self.base_dir(host),
                main=True,
                label=host if len(self.hosts) > 1 else None,
                user_code=True,
                failure_file=os.path.join(self.base_dir(host), "output", "failure"),
            )
            for host in self.hosts
        ]

    def run(self, max_run: float | None = None, out=None, err=None) -> ClusterResult:
        """Run every host to the end; ``max_run`` seconds stops them all."""
        import time

        deadline = time.monotonic() + max_run if max_run else None
        # A host supervisor needs its own grace to stop its children, plus a margin.
        try:
            supervisor = Supervisor(self.specs(), grace=self.grace + 5, aux_grace=self.grace + 5,
                                    deadline=deadline, out=out, err=err)
            outcome = supervisor.run()
        finally:  # the hosts have ended: another job may have their ports
            self.release_ports()
        return ClusterResult(outcome=outcome, host_dirs={h: self.base_dir(h) for h in self.hosts})


def _write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
