"""The legacy TensorFlow trainer: a child process that imports TensorFlow.

Run as ``python -m sagemaker_training.frameworks.tensorflow.estimator`` with
the user's environment (and ``TF_CONFIG`` in a distributed job). It

1. imports the user's module as TensorFlow 1.x code (:mod:`.tf1`: ``tf``
   is ``tf.compat.v1``, then TensorFlow 2, plus ``tf.contrib``'s pieces)
   and checks it has a model function and both input functions;
2. builds a ``RunConfig`` from the hyperparameters the contract lists, with
   ``model_dir`` = the checkpoint directory (see :mod:`.checkpoints`);
3. builds the Estimator from ``estimator_fn(run_config, hyperparameters)``,
   ``keras_model_fn(hyperparameters)`` (through
   ``tf.keras.estimator.model_to_estimator``) or ``model_fn`` (TF 1's
   Estimator; wrapped, so it is called positionally and may name its
   parameters freely);
4. runs ``tf.estimator.train_and_evaluate`` with
   ``TrainSpec(max_steps=training_steps)`` and
   ``EvalSpec(steps=evaluation_steps)`` and, when the module has
   ``serving_input_fn``, a ``LatestExporter`` named ``Servo`` whose
   SavedModels land in ``<model_dir>/export/Servo/<timestamp>/`` whatever the
   checkpoint directory is. Only the master (or a single host) evaluates and
   exports.

Every call into the user's code runs inside :class:`errors.user_code`, so a
failure reads ``train_input_fn raised KeyError: 'training'``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time

from ...core import settings as knobs
from ...environment import Environment
from ...errors import ClientError, PlatformError, UserError, mark_done, record, user_code
from . import checkpoints, sessions, user_module, worker_delay

EXPORTER_NAME = "Servo"
# RunConfig(tf_random_seed=...) for reproducible legacy runs (unset: TensorFlow picks, as in the 2017 containers).
RANDOM_SEED_ENV = "SAGEMAKER_TF_RANDOM_SEED"
# A non-chief worker polls every this many seconds for the chief to have
# initialized the variables (TensorFlow's default is 30 s).
SESSION_POLL_SECONDS = 1
# How long a distributed task waits for its training session to close (see sessions.bound_session_close).
SESSION_CLOSE_SECONDS = 1.0

RUN_CONFIG_INTS = ("save_checkpoints_secs", "save_checkpoints_steps", "save_summary_steps", "keep_checkpoint_max",
                   "log_step_count_steps")
RUN_CONFIG_FLOATS = ("keep_checkpoint_every_n_hours",)

log = logging.getLogger("sagemaker_training.tensorflow")


# --------------------------------------------------------------------------
# Settings from the hyperparameters (no TensorFlow needed)


def _number(hyperparameters: dict, name: str, kind=int, default=None):
    value = hyperparameters.get(name, default)
    if value is None or value == "":
        return default
    what = "an integer" if kind is int else "a number"
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if kind is int and not number.is_integer():
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ClientError(f"hyperparameter {name} must be {what}, got {value!r}.")
    return int(number) if kind is int else number


def run_config_kwargs(hyperparameters: dict) -> dict:
    """RunConfig arguments from the hyperparameters that are given."""
    kwargs = {}
    for name in RUN_CONFIG_INTS:
        if hyperparameters.get(name) not in (None, ""):
            kwargs[name] = _number(hyperparameters, name, int)
    for name in RUN_CONFIG_FLOATS:
        if hyperparameters.get(name) not in (None, ""):
            kwargs[name] = _number(hyperparameters, name, float)
    if "save_checkpoints_secs" in kwargs and "save_checkpoints_steps" in kwargs:
        raise ClientError("give save_checkpoints_secs or save_checkpoints_steps, not both: TensorFlow's RunConfig "
                          "accepts one checkpoint schedule.")
    return kwargs


def spec_settings(hyperparameters: dict) -> dict:
    """training_steps, evaluation_steps and the EvalSpec timing that is given."""
    settings = {
        "training_steps": _number(hyperparameters, "training_steps", int, 1000),
        "evaluation_steps": _number(hyperparameters, "evaluation_steps", int, 100),
    }
    for name in ("start_delay_secs", "throttle_secs"):
        if hyperparameters.get(name) not in (None, ""):
            settings[name] = _number(hyperparameters, name, int)
    if settings["training_steps"] is not None and settings["training_steps"] <= 0:
        raise ClientError(f"hyperparameter training_steps must be positive, got {settings['training_steps']}.")
    if settings["evaluation_steps"] is not None and settings["evaluation_steps"] <= 0:
        settings["evaluation_steps"] = None  # evaluate on the whole eval input, as TensorFlow does with None
    return settings


def task_of(tf_config: dict) -> tuple[str | None, int]:
    task = tf_config.get("task") or {}
    return task.get("type"), int(task.get("index", 0) or 0)


def is_chief(tf_config: dict) -> bool:
    return task_of(tf_config)[0] in (None, "master", "chief")


# --------------------------------------------------------------------------
# TensorFlow


def _positional_count(fn) -> float:
    import inspect  # noqa: PLC0415

    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 4
    count = 0
    for p in parameters:
        if p.kind is p.VAR_POSITIONAL:
            return float("inf")
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "config":
            count += 1
    return count


def wrap_model_fn(user_fn):
    """A model_fn for tf.estimator.Estimator that calls ``user_fn(features,
    labels, mode, params)`` positionally (fewer when it takes fewer), and
    passes ``config`` by keyword when the user's function declares it."""
    import inspect  # noqa: PLC0415

    count = _positional_count(user_fn)
    try:
        wants_config = "config" in inspect.signature(user_fn).parameters
    except (TypeError, ValueError):
        wants_config = False

    def model_fn(features, labels, mode, params, config):
        args = (features, labels, mode, params)[: int(min(count, 4))]
        with user_code("model_fn"):
            return user_fn(*args, **({"config": config} if wants_config else {}))

    return model_fn


def servo_exporter(tf, serving_input_receiver_fn, export_base: str):
    """A LatestExporter named ``Servo`` that writes under ``export_base``
    (``<model_dir>/export/Servo``) instead of the Estimator's model_dir."""

    class ServoExporter(tf.estimator.LatestExporter):
        def export(self, estimator, export_path, checkpoint_path, eval_result, is_the_final_export):
            return super().export(estimator, export_base, checkpoint_path, eval_result, is_the_final_export)

    return ServoExporter(EXPORTER_NAME, serving_input_receiver_fn)


def build_estimator(tf, kind: str, module, run_config, hyperparameters: dict):
    if kind == "estimator_fn":
        with user_code("estimator_fn"):
            estimator = module.estimator_fn(run_config, hyperparameters)
        if not isinstance(estimator, tf.compat.v1.estimator.Estimator):  # TF 1's and TF 2's
            raise UserError(f"estimator_fn returned {type(estimator).__name__}, not a tf.estimator.Estimator: "
                            "return the estimator built with the run_config it receives.")
        return estimator
    if kind == "keras_model_fn":
        with user_code("keras_model_fn"):
            model = module.keras_model_fn(hyperparameters)
            if not isinstance(model, tf.keras.Model):
                raise UserError(f"keras_model_fn returned {type(model).__name__}, not a compiled tf.keras.Model.")
            return tf.keras.estimator.model_to_estimator(keras_model=model, config=run_config)
    # TF 1's Estimator: the model_fn is TensorFlow 1.x code (see tf1).
    return tf.compat.v1.estimator.Estimator(model_fn=wrap_model_fn(module.model_fn), config=run_config,
                                            params=hyperparameters)


def _exports(export_base: str) -> set:
    try:
        return {name for name in os.listdir(export_base) if name.isdigit()}
    except FileNotFoundError:
        return set()


class _Stop(SystemExit):
    pass


class Signals:
    """SIGTERM/SIGINT while the Estimator trains: stop after the current step.

    The training loop then ends the normal way, so the chief's checkpoint
    saver writes a checkpoint of the step reached (and the S3 mirror uploads
    it): a stopped or interrupted job resumes from there. Outside the loop,
    or on a second signal, the process stops at once.
    """

    def __init__(self):
        self.received: int | None = None
        self.training = False

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.handle)

    def handle(self, signum, frame):  # noqa: ARG002
        first = self.received is None
        self.received = signum
        if self.training and first:
            log.info("received %s: stopping after this step and saving a checkpoint", signal.Signals(signum).name)
            return
        raise _Stop(128 + signum)

    def hook(self, tf):
        signals = self

        class StopOnSignal(tf.estimator.SessionRunHook):
            def after_run(self, run_context, run_values):  # noqa: ARG002
                if signals.received is not None:
                    run_context.request_stop()

        return StopOnSignal()


def train(env: Environment, environ=None, signals: Signals | None = None) -> dict:
    """Train, evaluate and export one task of the job; return a summary."""
    environ = os.environ if environ is None else environ
    signals = signals or Signals()
    tf_config = json.loads(environ.get("TF_CONFIG") or "{}")
    task_type, task_index = task_of(tf_config)
    chief = is_chief(tf_config)
    distributed = bool(tf_config.get("cluster"))

    path = user_module.module_path(env)
    if path is None:
        raise ClientError(f"entry point {env.user_entry_point!r} is not a Python file in {env.code_dir}.")
    program = os.path.basename(path)
    module = user_module.load(path, env.code_dir)
    kind = user_module.check(module, program)
    arguments = user_module.InputArguments(env.channel_input_dirs, env.hyperparameters)
    train_input_fn = arguments.bind(module.train_input_fn, "train_input_fn")
    eval_input_fn = arguments.bind(module.eval_input_fn, "eval_input_fn")
    serving = getattr(module, "serving_input_fn", None)
    serving_input_fn = arguments.bind(serving, "serving_input_fn") if callable(serving) else None

    settings = spec_settings(env.hyperparameters)
    config_kwargs = run_config_kwargs(env.hyperparameters)
    location = checkpoints.checkpoint_path(env.hyperparameters, env.job_name, env.model_dir)
    local_dir = checkpoints.local_dir_for(location, env.checkpoint_dir)
    os.makedirs(local_dir, exist_ok=True)
    mirror = None
    if checkpoints.is_s3(location) and chief:
        mirror = checkpoints.S3Mirror(location, local_dir, env.region)
        try:
            mirror.restore()
        except Exception as exc:  # noqa: BLE001
            raise PlatformError(f"reading checkpoints from {location} failed: {type(exc).__name__}: {exc}")

    import tensorflow as tf  # noqa: PLC0415 - only the child pays for TensorFlow

    if env.log_level <= logging.INFO:
        tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.INFO)
    sessions.quiet_deprecations()
    if distributed:
        sessions.poll_for_chief_every(SESSION_POLL_SECONDS)
        sessions.bound_session_close(SESSION_CLOSE_SECONDS)
        sessions.unsharded_default_saver()  # no shared file system between hosts
        delay = worker_delay(environ)
        if delay is not None:
            config_kwargs["experimental_max_worker_delay_secs"] = delay
    seed = knobs.number(RANDOM_SEED_ENV, None, integer=True, environ=environ)
    if seed is not None:
        config_kwargs["tf_random_seed"] = seed
    run_config = tf.estimator.RunConfig(model_dir=local_dir, **config_kwargs)
    estimator = build_estimator(tf, kind, module, run_config, env.hyperparameters)
    if os.path.abspath(estimator.model_dir) != os.path.abspath(local_dir):
        log.warning("the estimator's model_dir is %s, not the checkpoint directory %s: build it with the "
                    "run_config that estimator_fn receives", estimator.model_dir, local_dir)

    export_base = os.path.join(env.model_dir, "export", EXPORTER_NAME)
    exporters = []
    if serving_input_fn is not None:
        exporters.append(servo_exporter(tf, serving_input_fn, export_base))
    elif chief:
        log.warning("%s defines no serving_input_fn: no SavedModel will be exported to %s (define "
                    "serving_input_fn(hyperparameters) returning a ServingInputReceiver to get one)",
                    program, export_base)
    eval_kwargs = {k: settings[k] for k in ("start_delay_secs", "throttle_secs") if k in settings}
    train_spec = tf.estimator.TrainSpec(train_input_fn, max_steps=settings["training_steps"],
                                        hooks=[signals.hook(tf)])
    eval_spec = tf.estimator.EvalSpec(eval_input_fn, steps=settings["evaluation_steps"], exporters=exporters,
                                      **eval_kwargs)

    before = _exports(export_base)
    log.info("training %s as %s: training_steps=%s evaluation_steps=%s checkpoints in %s", program,
             f"{task_type} {task_index}" if distributed else "a single task", settings["training_steps"],
             settings["evaluation_steps"], location)
    started, cpu_started = time.monotonic(), time.process_time()
    if mirror is not None:
        mirror.start()
    succeeded = False
    try:
        signals.training = True
        tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)
        succeeded = True
    finally:
        signals.training = False
        if mirror is not None:
            try:
                mirror.stop()
            except Exception as exc:  # noqa: BLE001
                if succeeded:
                    raise PlatformError(f"uploading checkpoints to {location} failed: {type(exc).__name__}: {exc}")
                log.warning("uploading checkpoints to %s failed: %s", location, exc)
    elapsed = time.monotonic() - started
    log.info("train_and_evaluate took %.3fs (%.3fs of CPU)", elapsed, time.process_time() - cpu_started)

    # only the chief exports (a model dir shared by all hosts, as the SDK's local mode mounts it, shows
    # a worker the chief's export too)
    exported = sorted(_exports(export_base) - before) if chief else []
    if signals.received is not None:
        log.info("stopped by %s after the checkpoint of the last step", signal.Signals(signals.received).name)
    elif chief and serving_input_fn is not None and not exported:
        # train_and_evaluate evaluates and exports only after a new checkpoint: a job resumed at its
        # last step trains nothing, and would leave no model without this.
        log.info("no export happened during training (nothing left to train?): exporting the latest checkpoint")
        with user_code("serving_input_fn"):
            path = estimator.export_saved_model(export_base, serving_input_fn)
        exported = [os.path.basename(path.decode() if isinstance(path, bytes) else path)]
    if exported:
        log.info("exported SavedModel %s", os.path.join(export_base, exported[-1]))
    return {"seconds": elapsed, "exports": exported, "task": task_type, "checkpoints": location,
            "stopped_by": signals.received}


def _exit_now(code: int = 0) -> None:
    """End the process without the interpreter's teardown of TensorFlow.

    Tearing down a TensorFlow 2.15 process (its graph, sessions, tf.data and
    gRPC threads) takes most of a second after the work is done, and can
    block on a gRPC channel to a peer that is already gone. Everything the
    job produces is on disk by now: summary writers are closed here, the
    checkpoint mirror has synced, and the streams are flushed.
    """
    import sys  # noqa: PLC0415

    tf = sys.modules.get("tensorflow")
    try:
        if tf is not None:
            tf.compat.v1.summary.FileWriterCache.clear()
    except Exception:  # noqa: BLE001 - best effort; the writers flushed after each write anyway
        pass
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


@record
def main() -> None:
    signals = Signals()
    signals.install()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    summary = train(Environment(), signals=signals)
    if not summary["stopped_by"]:
        mark_done()
    _exit_now(128 + summary["stopped_by"] if summary["stopped_by"] else 0)


if __name__ == "__main__":
    main()
