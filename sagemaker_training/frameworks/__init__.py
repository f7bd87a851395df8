"""Framework runners, chosen by ``SAGEMAKER_FRAMEWORK`` (set by the image).

A runner is a module ``sagemaker_training.frameworks.<name>`` with one entry
function, ``plan(job) -> Plan``. It runs in the supervisor and must not import
its framework: it only decides which child processes to start (a legacy
trainer, a parameter server, the user's script with TF_CONFIG ...). The code
that imports TensorFlow or MXNet lives in modules the children run.

With no framework set, :mod:`sagemaker_training.frameworks.script` runs the
entry point as a plain script.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..core.values import Value
from ..errors import ClientError

FRAMEWORKS = ("tensorflow", "mxnet")


class Plan(Value):
    """The children of one host, and what to do once the main ones succeed.

    ``on_mains_done(children, stopping=...)`` runs after every main child
    exited 0 and before the auxiliary children are stopped (a parameter
    server host waits there for its peers); ``children`` are the
    supervisor's live handles (:class:`sagemaker_training.supervision.child.Child`)
    of this plan's auxiliary children, to wait for or signal; ``stopping()``
    turns true when a stop comes meanwhile (then it should return). It must
    return within a bounded time.
    """

    _fields = ("specs", "on_mains_done", "description")

    def __init__(self, specs: list | None = None, on_mains_done: Callable[..., None] | None = None,
                 description: str = ""):
        self.specs = [] if specs is None else specs
        self.on_mains_done = on_mains_done
        self.description = description


def load(name: str | None):
    """The runner module for ``name`` (None or "" → plain script mode): its ``plan(job)``, and
    optionally ``prepare_script_mode(job)``, what it changes in a script-mode job that another
    plan (MPI's) runs."""
    if not name:
        return importlib.import_module(".script", __name__)
    key = name.strip().lower()
    if key not in FRAMEWORKS:
        raise ClientError(
            f"SAGEMAKER_FRAMEWORK={name!r} is not a framework this toolkit runs; use one of: "
            f"{', '.join(FRAMEWORKS)} (or leave it unset for a plain script)."
        )
    return importlib.import_module(f".{key}", __name__)
