"""The TensorFlow runner (``SAGEMAKER_FRAMEWORK=tensorflow``).

:func:`plan` (in :mod:`.runner`) runs in the supervisor and never imports TensorFlow. It decides,
from the entry point's syntax tree (the module is neither imported nor run),
between

* legacy mode: the module defines ``estimator_fn``, ``keras_model_fn`` or
  ``model_fn`` at top level; the trainer child
  (:mod:`.estimator`) imports it as TensorFlow 1.x code (:mod:`.tf1`) and
  runs the Estimator loop; on N hosts with parameter servers
  (:mod:`.distribution`). A legacy module that is Python 2 fails here,
  before anything runs, naming the file and line;
* script mode: anything else; the entry point runs as a program
  (:func:`sagemaker_training.frameworks.script.script_spec`), with
  ``TF_CONFIG`` when ``sagemaker_parameter_server_enabled`` (N > 1 hosts:
  a parameter server per host, the script as master or worker) or
  ``sagemaker_multi_worker_mirrored_strategy_enabled`` (every host a
  worker) is set. Like the SageMaker TensorFlow toolkit, a tuning job's
  ``model_dir`` hyperparameter (an S3 location) gets ``/<job name>/model``
  appended so that the jobs of one tuning run do not overwrite each other.
  A script that is TensorFlow 1.x code (:mod:`.api`: ``SAGEMAKER_TF_API``,
  local mode's image tag, or ``auto`` on its syntax tree) runs through the
  child :mod:`.tf1_script`, under the TF 1.x namespace in graph mode.

Modules: :mod:`.runner` (the plans), :mod:`.user_module` (the legacy
interface, argument aliases), :mod:`.api` and :mod:`.tf1_names` (TF 1.x or 2
for script mode), :mod:`.tf1_script` and ``tf1_site/sitecustomize.py`` (TF
1.x script mode's child and its subprocess hook), :mod:`.tf1`, :mod:`.contrib`
and :mod:`.contrib_eager` (the TensorFlow 1.x namespace; ``tf.contrib`` with
:mod:`.contrib_layers`, :mod:`.contrib_data`, :mod:`.contrib_datasets`),
:mod:`.estimator` (trainer child; :mod:`.sessions`, its patches of TensorFlow's
session machinery), :mod:`.parameter_server` (ps child),
:mod:`.peers` (peer watcher child and bounded waits), :mod:`.checkpoints`
(checkpoint location and S3 mirror), :mod:`.distribution` (per-host plans).
"""

from __future__ import annotations

from ...core import settings

# The supervisor's plan code lives in .runner; this package's __init__ stays light because every
# TensorFlow child (``python -m sagemaker_training.frameworks.tensorflow.<child>``) imports it.
_RUNNER_NAMES = ("plan", "prepare_script_mode", "trainer_spec", "tuning_model_dir", "ESTIMATOR_MODULE")

WORKER_DELAY_ENV = "SAGEMAKER_TF_WORKER_DELAY_SECONDS"


def worker_delay(environ=None) -> int | None:
    """``SAGEMAKER_TF_WORKER_DELAY_SECONDS`` (read by settings.py): the most a
    legacy worker waits before it starts, in whole seconds; None when unset."""
    delay = settings.seconds(WORKER_DELAY_ENV, None, environ=environ)
    return None if delay is None else int(delay)


def __getattr__(name: str):
    if name in _RUNNER_NAMES:
        from . import runner  # noqa: PLC0415 - only the supervisor pays for the plan modules

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_RUNNER_NAMES, "worker_delay", "WORKER_DELAY_ENV"]
