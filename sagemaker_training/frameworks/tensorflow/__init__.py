"""The TensorFlow runner (``SAGEMAKER_FRAMEWORK=tensorflow``).

:func:`plan` runs in the supervisor and never imports TensorFlow. It decides,
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

Modules: :mod:`.user_module` (the legacy interface, argument aliases),
:mod:`.tf1` and :mod:`.contrib` (the TensorFlow 1.x namespace),
:mod:`.estimator` (trainer child; :mod:`.sessions`, its patches of TensorFlow's
session machinery), :mod:`.parameter_server` (ps child),
:mod:`.peers` (peer watcher child and bounded waits), :mod:`.checkpoints`
(checkpoint location and S3 mirror), :mod:`.distribution` (per-host plans).
"""

from __future__ import annotations

import sys

from ...host import entry_point
from ... import params
from ...core import logs, settings
from ...core.hyperparameters import as_bool
from ...supervision.processes import ProcessSpec
from .. import Plan
from ..script import script_spec

ESTIMATOR_MODULE = "sagemaker_training.frameworks.tensorflow.estimator"

log = logs.get("tensorflow")


def trainer_spec(job, extra_env: dict | None = None, name: str | None = None) -> ProcessSpec:
    """The legacy trainer child: the user's module imported and trained by :mod:`.estimator`."""
    env = job.env
    return ProcessSpec(
        name=name or env.user_entry_point,
        argv=[sys.executable, "-m", ESTIMATOR_MODULE],
        env=entry_point.child_environ(env, extra_env),
        cwd=env.code_dir,
        main=True,
        user_code=True,
    )


def tuning_model_dir(hyperparameters: dict, job_name: str | None) -> str | None:
    """Script mode: the ``model_dir`` a tuning job's script gets, or None to keep it.

    As the SageMaker TensorFlow toolkit does: a ``model_dir`` outside
    /opt/ml (an S3 location set by the SDK) becomes ``<model_dir>/<job name>/model``.
    """
    if "_tuning_objective_metric" not in hyperparameters or not job_name:
        return None
    model_dir = hyperparameters.get("model_dir")
    if not isinstance(model_dir, str) or not model_dir or model_dir.startswith(params.BASE_DIR):
        return None
    if model_dir.rstrip("/").endswith(f"{job_name}/model"):
        return None
    return f"{model_dir.rstrip('/')}/{job_name}/model"


def prepare_script_mode(job) -> None:
    """What script mode changes in the job before any plan, MPI's included: a tuning job's
    ``model_dir`` (:func:`tuning_model_dir`)."""
    env = job.env
    rewritten = tuning_model_dir(env.hyperparameters, env.job_name)
    if rewritten:
        log.info("tuning job: the script's model_dir becomes %s", rewritten)
        env.hyperparameters["model_dir"] = rewritten


def _script_plan(job) -> Plan:
    from . import distribution  # noqa: PLC0415 - submodules that run as children stay unimported here

    env = job.env
    program = env.user_entry_point
    prepare_script_mode(job)
    if as_bool(env.setting(params.PARAMETER_SERVER)) and len(env.hosts) > 1:
        def script(extra_env, name):
            return script_spec(job, extra_env, name=name)

        return distribution.parameter_server_plan(job, script, f"script mode: {program}")
    if as_bool(env.setting(params.MULTI_WORKER_MIRRORED)):
        return Plan(specs=[script_spec(job, distribution.multi_worker_env(job))],
                    description=f"script mode: {program}, MultiWorkerMirroredStrategy on {len(env.hosts)} hosts")
    return Plan(specs=[script_spec(job)], description=f"script mode: {program}")


WORKER_DELAY_ENV = "SAGEMAKER_TF_WORKER_DELAY_SECONDS"


def worker_delay(environ=None) -> int | None:
    """``SAGEMAKER_TF_WORKER_DELAY_SECONDS`` (read by settings.py): the most a
    legacy worker waits before it starts, in whole seconds; None when unset."""
    delay = settings.seconds(WORKER_DELAY_ENV, None, environ=environ)
    return None if delay is None else int(delay)


def _legacy_plan(job) -> Plan:
    from . import distribution  # noqa: PLC0415

    env = job.env
    program = env.user_entry_point
    if len(env.hosts) > 1:
        worker_delay(env.environ)  # a bad value fails here, before anything runs
        def trainer(extra_env, name):
            return trainer_spec(job, extra_env, name=name)

        return distribution.parameter_server_plan(job, trainer, f"legacy TensorFlow: {program}")
    return Plan(specs=[trainer_spec(job)], description=f"legacy TensorFlow: {program}")


def plan(job) -> Plan:
    from . import user_module  # noqa: PLC0415

    if user_module.is_legacy(job.env):
        python2 = entry_point.python2_error(user_module.module_path(job.env))
        if python2 is not None:  # before anything runs: it would fail on import in every process
            raise python2
        return _legacy_plan(job)
    return _script_plan(job)


__all__ = ["plan", "prepare_script_mode", "trainer_spec", "tuning_model_dir", "ESTIMATOR_MODULE"]
