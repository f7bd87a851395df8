"""The TensorFlow runner's plans (the supervisor side; see the package's docstring).

Nothing here imports TensorFlow, and no child process imports this module.
"""


from __future__ import annotations

import os
import sys

from ... import params
from ...core import logs
from ...core.hyperparameters import as_bool
from ...host import entry_point
from ...storage.uri import is_s3
from ...supervision.processes import ProcessSpec
from .. import Plan
from ..script import script_spec
from . import api, tf1_script, user_module, worker_delay

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


def tf1_model_dir(job) -> dict:
    """TF 1.x script mode with an S3 ``model_dir`` hyperparameter (the SDK's default): TensorFlow 1.x
    wrote there through its own S3 file system, which TensorFlow 2.15 lacks. The script gets the local
    checkpoint dir instead, and the launcher (:mod:`.tf1_script`) mirrors it to the S3 location as
    legacy ``checkpoint_path`` is (restored first, synced while it trains, synced at the end, by the
    chief). Returns the launcher's environment for it (empty when ``model_dir`` is not on S3)."""
    import json  # noqa: PLC0415

    env = job.env
    model_dir = env.hyperparameters.get("model_dir")
    if not (isinstance(model_dir, str) and is_s3(model_dir)):
        return {}
    env.hyperparameters["model_dir"] = env.checkpoint_dir
    log.info("TensorFlow 1.x script mode: the script's model_dir %s is the local %s, mirrored to %s",
             model_dir, env.checkpoint_dir, model_dir)
    return {tf1_script.MODEL_DIR_ENV: json.dumps({"s3": model_dir, "local": env.checkpoint_dir,
                                                  "region": env.region})}


def tf1_script_spec(job, extra_env: dict | None = None, name: str | None = None) -> ProcessSpec:
    """The user's script run as TensorFlow 1.x code (:mod:`.tf1_script`): a Python entry point
    through the launcher, anything else (a shell script, a module) as it is; in both cases its
    Python processes get the TF 1.x namespace through the ``sitecustomize`` hook (:mod:`.tf1_site`)."""
    env = job.env
    path = user_module.module_path(env)
    site = {tf1_script.CODE_DIR_ENV: env.code_dir, api.API_ENV: "1"}
    spec = script_spec(job, {**site, **(extra_env or {})}, name=name)
    pythonpath = spec.env.get("PYTHONPATH")
    spec.env["PYTHONPATH"] = tf1_script.SITE_DIR + (os.pathsep + pythonpath if pythonpath else "")
    if path is not None and spec.argv[:2] == [sys.executable, path]:
        spec.argv = [sys.executable, "-m", tf1_script.MODULE, *spec.argv[1:]]
    entry_point.check_exec_size(spec.argv, spec.env)
    return spec


def choose_api(job) -> str:
    """"1" or "2": the TensorFlow API of a script-mode job (:mod:`.api`), logged with the reason."""
    env = job.env
    chosen, why = api.choose(env.environ, user_module.module_path(env), env.code_dir)
    log.info("TensorFlow %s API for %s: %s", "1.x" if chosen == "1" else "2", env.user_entry_point, why)
    return chosen


def _script_plan(job) -> Plan:
    from . import distribution  # noqa: PLC0415 - submodules that run as children stay unimported here

    env = job.env
    program = env.user_entry_point
    prepare_script_mode(job)
    tf1 = choose_api(job) == "1"
    make_spec = script_spec
    if tf1:
        model_dir_env = tf1_model_dir(job)

        def make_spec(job, extra_env=None, name=None):
            return tf1_script_spec(job, {**model_dir_env, **(extra_env or {})}, name=name)
    mode = "TensorFlow 1.x script mode" if tf1 else "script mode"
    if as_bool(env.setting(params.PARAMETER_SERVER)) and len(env.hosts) > 1:
        def script(extra_env, name):
            return make_spec(job, extra_env, name=name)

        return distribution.parameter_server_plan(job, script, f"{mode}: {program}")
    if as_bool(env.setting(params.MULTI_WORKER_MIRRORED)):
        return Plan(specs=[make_spec(job, distribution.multi_worker_env(job))],
                    description=f"{mode}: {program}, MultiWorkerMirroredStrategy on {len(env.hosts)} hosts")
    return Plan(specs=[make_spec(job)], description=f"{mode}: {program}")


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
    if user_module.is_legacy(job.env):
        python2 = entry_point.python2_error(user_module.module_path(job.env))
        if python2 is not None:  # before anything runs: it would fail on import in every process
            raise python2
        return _legacy_plan(job)
    return _script_plan(job)


