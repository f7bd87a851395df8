"""The ``train`` entrypoint: one host's whole training job.

``docker run IMAGE train`` ends up here. The supervisor reads the job from
``$SAGEMAKER_BASE_DIR`` (default /opt/ml), resolves the other hosts, fetches
and installs the user's code, asks the framework runner which children to
start, supervises them, and reports: ``output/success`` and exit 0, or
``output/failure`` (its first line says what failed and what to do) and a
non-zero exit code (the user's own, or 128+signal).

It never imports TensorFlow or MXNet, and imports boto3 only when the code
is on S3.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

from . import distributed, entry_point, frameworks, logs
from ._record import Record
from .environment import Environment, base_dir_from
from .errors import ClientError, Redactor, ToolkitError, TrainingError
from .processes import Outcome, signal_name, supervise

FAILURE_LIMIT = 1024 * 32


class Job(Record):
    """What a framework runner needs to plan one host's children."""

    _fields = ("env", "addresses")

    def __init__(self, env: Environment, addresses: dict):
        self.env = env
        self.addresses = addresses


def write_report(output_dir: str, failure: str | None) -> None:
    """``output/success`` (empty) or ``output/failure`` with the reason."""
    os.makedirs(output_dir, exist_ok=True)
    for stale in ("success", "failure"):
        try:
            os.remove(os.path.join(output_dir, stale))
        except FileNotFoundError:
            pass
    name = "success" if failure is None else "failure"
    tmp = os.path.join(output_dir, f".{name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("" if failure is None else Redactor()(failure)[:FAILURE_LIMIT])
    os.replace(tmp, os.path.join(output_dir, name))


def prepare(env: Environment, log) -> Job:
    """Everything before the user's code runs: hosts, code, requirements."""
    addresses = {}
    if env.is_distributed:
        log.info("resolving hosts %s", ", ".join(env.hosts))
        addresses = distributed.resolve_hosts(env.hosts)
    for path in (env.model_dir, env.output_data_dir, env.output_intermediate_dir):
        os.makedirs(path, exist_ok=True)
    if env.module_dir:
        log.info("fetching the code from %s", env.module_dir)
        from . import storage  # noqa: PLC0415 - keeps boto3 out of jobs without S3

        storage.fetch_submit_dir(env.module_dir, env.code_dir, env.region)
    elif not os.path.isdir(env.code_dir):
        raise ClientError(
            "hyperparameter sagemaker_submit_directory is not set and there is no code directory "
            f"({env.code_dir}): give the S3 URI or path of the code (the SDK's source_dir)."
        )
    entry_point.locate(env.code_dir, env.user_entry_point)
    requirements = env.setting("sagemaker_requirements") or "requirements.txt"
    if entry_point.install_requirements(env.code_dir, requirements):
        log.info("installed %s", requirements)
    if entry_point.is_installable(env.code_dir):
        log.info("installing the submit directory as a package")
        entry_point.install_package(env.code_dir)
    return Job(env=env, addresses=addresses)


def outcome_reason(outcome: Outcome) -> tuple[str, int]:
    """(failure text, exit code) of an unsuccessful outcome."""
    if outcome.failure is not None:
        return outcome.failure.reason(), outcome.failure.exit_code
    if outcome.stopped_by is not None:
        name = signal_name(outcome.stopped_by)
        return (f"Stopped: the container received {name} (StopTrainingJob, a spot interruption or the "
                f"max run time); the training processes were asked to stop and save their state.\n",
                128 + outcome.stopped_by)
    return "Stopped: the job ran past its deadline.\n", 124


def run(environ=None) -> int:
    environ = os.environ if environ is None else environ
    started = time.monotonic()
    log = logs.configure()
    base_dir = base_dir_from(environ)
    output_dir = os.path.join(base_dir, "output")
    try:
        env = Environment(base_dir, environ)
        log.setLevel(env.log_level)
        runner = frameworks.load(environ.get("SAGEMAKER_FRAMEWORK"))
        job = prepare(env, log)
        plan = runner.plan(job)
        log.info("starting %s on %s", plan.description or "training", env.current_host)
        outcome = supervise(plan.specs, on_mains_done=plan.on_mains_done)
        if outcome.ok:
            write_report(output_dir, None)
            log.info("training succeeded in %.1fs", time.monotonic() - started)
            return 0
        reason, code = outcome_reason(outcome)
    except TrainingError as exc:
        reason, code = exc.reason(), exc.exit_code or 1
    except Exception as exc:  # noqa: BLE001 - a bug of ours still gets a failure file
        error = ToolkitError(f"{type(exc).__name__}: {exc}", details=traceback.format_exc())
        reason, code = error.reason(), 1
    try:
        write_report(output_dir, reason)
    except OSError as exc:
        log.error("could not write %s/failure: %s", output_dir, exc)
    log.error("training failed: %s", reason.splitlines()[0] if reason else "")
    if len(reason.splitlines()) > 1:
        sys.stderr.write(Redactor()(reason))
        sys.stderr.flush()
    return code


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "train":  # docker run IMAGE train
        argv = argv[1:]
    if argv:
        sys.stderr.write(f"usage: train (no arguments; the job is read from $SAGEMAKER_BASE_DIR), got {argv}\n")
        sys.exit(2)
    sys.exit(run())


if __name__ == "__main__":
    main()
