"""Which processes one host of a distributed TensorFlow job runs, and how it ends.

Parameter-server training (legacy on N hosts, or script mode with
``sagemaker_parameter_server_enabled``) runs three children per host:

* ``ps <i>``: a parameter server (:mod:`.parameter_server`), auxiliary;
* the trainer, main: the master on the first host (sorted), a worker on the
  others, with ``TF_CONFIG`` from
  :func:`sagemaker_training.host.distributed.tf_config_parameter_servers`;
* a peer watcher (:mod:`.peers`), auxiliary, that fails the host when a
  parameter server of another host goes away or never comes up.

When the trainer succeeds, :func:`parameter_server_plan`'s ``on_mains_done``
gets the live handles of these auxiliary children from the supervisor, sends
the watcher SIGTERM (it stands down quietly) and waits, bounded, for the
peers that still need this host's parameter server (see :mod:`.peers` for
the bounds); then the supervisor stops the rest.

MultiWorkerMirroredStrategy (script mode) needs no extra process: every host
runs the script as a worker with ``TF_CONFIG`` from
:func:`sagemaker_training.host.distributed.tf_config_multi_worker`.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable

from ...host import distributed, entry_point
from ...core import logs
from ...supervision.processes import ProcessSpec
from .. import Plan
from . import peers

PS_MODULE = "sagemaker_training.frameworks.tensorflow.parameter_server"

log = logs.get("tensorflow")


def task_name(tf_config: dict) -> str:
    task = tf_config["task"]
    return task["type"] if task["type"] in ("master", "chief") else f"{task['type']} {task['index']}"


def parameter_server_plan(job, trainer: Callable[[dict, str], ProcessSpec], description: str,
                          environ=None) -> Plan:
    """This host's children for parameter-server training.

    ``trainer(extra_env, name)`` builds the trainer's spec (the legacy
    Estimator runner or the user's script) with ``TF_CONFIG`` in ``extra_env``.
    """
    environ = os.environ if environ is None else environ
    env = job.env
    hosts, me = env.hosts, env.current_host
    trainer_config = distributed.tf_config_parameter_servers(hosts, me, job.addresses, environ)
    ps_config = distributed.tf_config_parameter_servers(hosts, me, job.addresses, environ, task_type="ps")
    mine = task_name(trainer_config)
    tasks = peers.endpoints(trainer_config, hosts)

    ps_spec = ProcessSpec(
        name=f"parameter server {task_name(ps_config)} on {me}",
        argv=[sys.executable, "-m", PS_MODULE],
        env=entry_point.child_environ(env, {"TF_CONFIG": json.dumps(ps_config)}),
        cwd=env.code_dir if os.path.isdir(env.code_dir) else None,
        main=False,
        user_code=False,
    )
    trainer_spec = trainer({"TF_CONFIG": json.dumps(trainer_config)}, f"tensorflow {mine} on {me}")

    # The watcher follows the other hosts' parameter servers (and, for its
    # messages, the master); on_mains_done stands it down through its handle.
    targets = [t for t in tasks if t.host != me and (t.watch or t.task in ("master", "chief"))]
    watch_spec = ProcessSpec(
        name=f"peer watch on {me}",
        argv=peers.spec_argv(targets, f"the {mine} on {me}"),
        main=False,
        user_code=False,
    )

    # Every other trainer may still need this host's parameter server: the
    # master (a worker host waits for it as long as it runs, bounded by
    # SAGEMAKER_TF_MASTER_WAIT_SECONDS), then the other workers (they stop
    # within a step once the master is done: SAGEMAKER_TF_PEER_WAIT_SECONDS).
    masters = [t for t in tasks if t.host != me and t.task in ("master", "chief")]
    workers = [t for t in tasks if t.host != me and t.task.startswith("worker")]
    master_wait = peers.seconds(peers.MASTER_WAIT_ENV, environ)
    peer_wait = peers.seconds(peers.PEER_WAIT_ENV, environ)
    poll = peers.seconds(peers.POLL_ENV, environ)
    peers.seconds(peers.START_ENV, environ)  # read by the watcher child: a bad value fails the host now

    def on_mains_done(children=(), stopping=lambda: False) -> None:
        """``children``: the supervisor's handles of this plan's live auxiliary children;
        ``stopping()``: whether a stop has come (the waits then end)."""
        for child in children:
            if child.spec is watch_spec:
                child.signal_group(signal.SIGTERM)
        if masters:
            peers.wait_closed(masters, master_wait, poll=poll, log=log, stopping=stopping)
        if workers and not stopping():
            peers.wait_closed(workers, peer_wait, poll=poll, log=log, stopping=stopping)

    return Plan(specs=[ps_spec, trainer_spec, watch_spec], on_mains_done=on_mains_done,
                description=f"{description}: {mine} of {len(hosts)} hosts with parameter servers")


def multi_worker_env(job, environ=None) -> dict:
    """The extra environment of a MultiWorkerMirroredStrategy worker."""
    env = job.env
    config = distributed.tf_config_multi_worker(env.hosts, env.current_host, job.addresses, environ)
    return {"TF_CONFIG": json.dumps(config)}
