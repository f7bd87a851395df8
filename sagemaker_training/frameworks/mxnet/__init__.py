"""MXNet runner: which children one host starts (the supervisor never imports MXNet).

* Legacy mode, when the entry point defines ``train`` at top level and has
  no ``if __name__ == "__main__":`` block (read from its source, not
  imported; a Python 2 one fails here, naming the file and line): the child
  :mod:`~sagemaker_training.frameworks.mxnet.trainer` imports the module,
  calls ``train(...)`` and saves the model it returns.
* Script mode otherwise: the entry point runs as its own process.

On more than one host MXNet's own ps-lite kvstore connects them: the first
host (sorted) runs the scheduler, every host runs a server
(:mod:`~sagemaker_training.frameworks.mxnet.kvstore`, auxiliary children),
and the user's code is the worker, with the ``DMLC_*`` variables of
:func:`sagemaker_training.host.distributed.mxnet_env`, so ``kvstore='dist_sync'``
works unchanged. The workers' kvstore shutdown barrier ends every node of
the job together, so once the worker has exited 0 the host gives its
scheduler and server a bounded time (``SAGEMAKER_MXNET_NODE_EXIT_SECONDS``,
default 5) to finish their own shutdown (the scheduler may still be
answering the other hosts) before the supervisor stops them: the
supervisor hands ``on_mains_done`` the handles of those very children, so
nothing looks for them in the process table. When a node
dies first, the host fails naming the role and the host.
"""

from __future__ import annotations

import functools
import os
import sys

from ...host import distributed, entry_point
from ...core import logs, settings
from ...supervision.child import wait_ended
from ...supervision.processes import ProcessSpec
from .. import Plan
from ..script import script_spec

TRAINER_MODULE = "sagemaker_training.frameworks.mxnet.trainer"
KVSTORE_MODULE = "sagemaker_training.frameworks.mxnet.kvstore"
NODE_EXIT_ENV = "SAGEMAKER_MXNET_NODE_EXIT_SECONDS"
DEFAULT_NODE_EXIT_SECONDS = 5.0


def is_legacy(env) -> bool:
    """True when the entry point is a Python file that defines ``train`` at
    top level and has no ``if __name__ == "__main__":`` block (the public
    script-mode mnist.py defines ``train`` and runs it from its main block).

    A file that does not parse as Python 3 is legacy when an unindented
    ``def train(`` line defines it; one that is Python 2 is a UserError
    here (naming the file and line), before any process starts.
    """
    program = env.user_entry_point or ""
    path = os.path.join(env.code_dir, program)
    if not (program.endswith(".py") and os.path.isfile(path)) or entry_point.has_main_guard(path):
        return False
    if entry_point.defines_top_level(path, ["train"]):
        return True
    if not entry_point.defines_top_level_text(path, ["train"]):
        return False
    python2 = entry_point.python2_error(path)
    if python2 is not None:
        raise python2
    return True


def kvstore_specs(job) -> list:
    """The scheduler (first host only) and the server of this host."""
    env = job.env
    roles = ["scheduler", "server"] if env.current_host == env.hosts[0] else ["server"]
    return [
        ProcessSpec(
            name=f"mxnet {role} on {env.current_host}",
            argv=[sys.executable, "-m", KVSTORE_MODULE],
            env=entry_point.child_environ(  # the user's code dir too: servers unpickle the optimizer
                env, distributed.mxnet_env(env.hosts, env.current_host, job.addresses, role)
            ),
            cwd=env.code_dir,
            main=False,
            label=f"mxnet-{role}",
            user_code=False,
        )
        for role in roles
    ]


def wait_for_kvstore_nodes(timeout: float, children=(), poll: float = 0.05, stopping=lambda: False) -> None:
    """Until this host's kvstore nodes have ended by themselves, or ``timeout``.

    Runs in the supervisor as ``Plan.on_mains_done``: ``children`` are its
    handles of the plan's live auxiliary children, the scheduler and server
    of :func:`kvstore_specs`; they are looked at, never reaped. A stop
    (``stopping()``) ends the wait: the supervisor has signalled them.
    """
    running = wait_ended(children, timeout, poll, stopping=stopping)
    if running and not stopping():
        logs.get().info(
            "%s still running %gs after this host's worker ended (did the code use a dist kvstore?); stopping them",
            ", ".join(child.name for child in running), timeout)


def node_exit_seconds(environ=None) -> float:
    """``SAGEMAKER_MXNET_NODE_EXIT_SECONDS`` (a bad value is a ClientError naming it)."""
    return settings.seconds(NODE_EXIT_ENV, DEFAULT_NODE_EXIT_SECONDS, environ)


def trainer_spec(job, extra_env: dict | None) -> ProcessSpec:
    env = job.env
    return ProcessSpec(
        name=env.user_entry_point,
        argv=[sys.executable, "-m", TRAINER_MODULE],
        env=entry_point.child_environ(env, extra_env),
        cwd=env.code_dir,
        main=True,
        user_code=True,
    )


def plan(job) -> Plan:
    env = job.env
    specs, worker_env, on_mains_done = [], None, None
    if env.is_distributed:
        specs = kvstore_specs(job)
        worker_env = distributed.mxnet_env(env.hosts, env.current_host, job.addresses, "worker")
        on_mains_done = functools.partial(wait_for_kvstore_nodes, node_exit_seconds())
    legacy = is_legacy(env)
    main = trainer_spec(job, worker_env) if legacy else script_spec(job, worker_env)
    mode = "legacy train()" if legacy else "script mode"
    where = f", kvstore worker of {len(env.hosts)} hosts" if env.is_distributed else ""
    return Plan(specs=[*specs, main], on_mains_done=on_mains_done,
                description=f"MXNet {mode}: {env.user_entry_point}{where}")
