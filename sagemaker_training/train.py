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

from .host import entry_point
from . import frameworks, mpi, params
from .core import logs
from .core.values import Value
from .environment import Environment, base_dir_from
from .errors import ClientError, Redactor, ToolkitError, TrainingError
from .supervision.processes import grace_seconds, supervise
from .supervision.report import FAILURE_LIMIT, empty_model_dir_warning, outcome_report, write_report  # noqa: F401 - FAILURE_LIMIT: tests read it here
from .supervision.stopping import StopGuard, Stopped


class Job(Value):
    """What a framework runner needs to plan one host's children."""

    _fields = ("env", "addresses")

    def __init__(self, env: Environment, addresses: dict):
        self.env = env
        self.addresses = addresses


def prepare(env: Environment, log, guard: StopGuard | None = None) -> Job:
    """Everything before the user's code runs: hosts, code, requirements.
    ``guard.phase`` follows the work, for the reason of a stop."""
    guard = guard or StopGuard()  # not entered: only holds the phase
    addresses = {}
    if env.is_distributed:
        from .host import distributed  # noqa: PLC0415 - only for a job of several hosts

        guard.phase = "resolving the hosts"
        log.info("resolving hosts %s", ", ".join(env.hosts))
        addresses = distributed.resolve_hosts(env.hosts)
    for path in (env.model_dir, env.output_data_dir, env.output_intermediate_dir):
        os.makedirs(path, exist_ok=True)
    if env.module_dir:
        guard.phase = f"fetching the code from {env.module_dir}"
        log.info("fetching the code from %s", env.module_dir)
        from .host import submit_dir  # noqa: PLC0415 - keeps boto3 out of jobs without S3

        submit_dir.fetch_submit_dir(env.module_dir, env.code_dir, env.region)
    elif not os.path.isdir(env.code_dir):
        raise ClientError(
            "hyperparameter sagemaker_submit_directory is not set and there is no code directory "
            f"({env.code_dir}): give the S3 URI or path of the code (the SDK's source_dir)."
        )
    entry_point.locate(env.code_dir, env.user_entry_point)
    requirements = env.setting(params.REQUIREMENTS) or "requirements.txt"
    guard.phase = f"installing {requirements}"
    if entry_point.install_requirements(env.code_dir, requirements):
        log.info("installed %s", requirements)
    if entry_point.is_installable(env.code_dir):
        guard.phase = "installing the submit directory as a package"
        log.info("installing the submit directory as a package")
        entry_point.install_package(env.code_dir)
    return Job(env=env, addresses=addresses)


def clear_previous_run(base_dir: str, log) -> None:
    """When a run of ``train`` already ended in this base dir (its report is
    there), remove what it left: the report, model/ and output/data/ contents,
    so that nothing stale passes for this run's result (symbolic links are
    removed, never followed)."""
    output_dir = os.path.join(base_dir, "output")
    reports = [os.path.join(output_dir, name) for name in ("success", "failure")]
    if not any(os.path.lexists(path) for path in reports):
        return
    import shutil  # noqa: PLC0415 - only for a re-run
    log.info("removing the report and artifacts of a previous run in %s", base_dir)
    for path in reports:
        if os.path.lexists(path):
            os.remove(path)
    for directory in (os.path.join(base_dir, "model"), os.path.join(output_dir, "data")):
        if os.path.islink(directory) or not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.remove(entry.path)


def run(environ=None, *, exit_if_stuck: bool = False) -> int:
    """One host's job to its report; returns the exit code.

    SIGTERM and SIGINT are handled from the first line (:mod:`.stopping`):
    before the training processes start they stop the work under way and the
    job reports the stop; then the supervisor passes them on. With
    ``exit_if_stuck`` (the ``train`` command) work that does not unwind
    within a few seconds of the signal ends the process, after the report.
    """
    environ = os.environ if environ is None else environ
    with StopGuard(on_stuck=_report_and_exit(base_dir_from(environ)) if exit_if_stuck else None) as guard:
        return _run(environ, guard)


def _report_and_exit(base_dir: str):
    """The guard's ``on_stuck``: the report of the stop, then the end of the process."""

    def on_stuck(stopped: Stopped) -> None:
        try:
            write_report(os.path.join(base_dir, "output"), stopped.reason())
        finally:
            sys.stderr.write(f"sagemaker_training: {stopped.reason()}")
            sys.stderr.flush()
            os._exit(stopped.exit_code)

    return on_stuck


def make_plan(runner, job):
    """This host's plan: MPI's (one place for every framework, after the runner's script-mode
    changes, ``prepare_script_mode``, where it has them) or the runner's own."""
    if not mpi.enabled(job.env):
        return runner.plan(job)
    prepare = getattr(runner, "prepare_script_mode", None)
    if prepare is not None:
        prepare(job)
    return mpi.plan(job)


def _run(environ, guard: StopGuard) -> int:
    started = time.monotonic()
    log = logs.configure()
    base_dir = base_dir_from(environ)
    output_dir = os.path.join(base_dir, "output")
    echo = True  # the reason's details go to stderr too, unless the children's output already showed them
    try:
        guard.phase = "reading the job's configuration"
        clear_previous_run(base_dir, log)
        env = Environment(base_dir, environ)
        grace = grace_seconds(environ)
        log.setLevel(env.log_level)
        runner = frameworks.load(environ.get("SAGEMAKER_FRAMEWORK"))
        job = prepare(env, log, guard)
        guard.phase = "starting the training processes"
        plan = make_plan(runner, job)
        log.info("starting %s on %s", plan.description or "training", env.current_host)
        outcome = supervise(plan.specs, grace=grace, on_mains_done=plan.on_mains_done)
        guard.disarm()
        if outcome.ok:
            write_report(output_dir, None)
            log.info("training succeeded in %.1fs", time.monotonic() - started)
            empty = empty_model_dir_warning(env.model_dir) if env.is_master else None
            if empty:  # the master's: other hosts of a distributed job often leave theirs empty
                log.warning(empty)
            return 0
        reason, code = outcome_report(outcome)
        echo = False  # the stderr tail in the reason was streamed as it came
    except Stopped as exc:
        reason, code = exc.reason(), exc.exit_code
    except TrainingError as exc:
        reason, code = exc.reason(), exc.exit_code or 1
    except Exception as exc:  # noqa: BLE001 - a bug of ours still gets a failure file
        import traceback  # noqa: PLC0415 - only for a failure of our own

        error = ToolkitError(f"{type(exc).__name__}: {exc}", details=traceback.format_exc())
        reason, code = error.reason(), 1
    try:
        write_report(output_dir, reason)
    except OSError as exc:
        log.error("could not write %s/failure: %s", output_dir, exc)
    log.error("training failed: %s", reason.splitlines()[0] if reason else "")
    if echo and len(reason.splitlines()) > 1:
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
    code = run(exit_if_stuck=True)
    # Leftover threads (an S3 transfer abandoned by a stop) must not hold the exit: the report is written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
