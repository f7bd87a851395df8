"""How a run ends, in words and an exit code, and the report files.

One host's ``train`` (train.py), several hosts on one machine (cluster.py) and
local mode all turn a supervised run's :class:`~sagemaker_training.supervision.processes.Outcome`
into the same (failure text, exit code) with :func:`outcome_report`, and
``train`` leaves it on disk with :func:`write_report`.
"""

from __future__ import annotations

import os

from ..errors import Redactor

FAILURE_LIMIT = 1024 * 32  # what output/failure keeps; the platform shows the first 1024 characters
MAX_RUN_EXIT = 124  # as timeout(1): stopped by the deadline


def outcome_report(outcome, who: str = "the container") -> tuple[str | None, int]:
    """(failure text, exit code) of an outcome; (None, 0) when it succeeded.

    ``who`` is what received a stopping signal ("the container" for one
    host's ``train``, "the job" for local mode's hosts).
    """
    from .signals import name as signal_name  # noqa: PLC0415 - not needed on a success

    if outcome.failure is not None:
        return outcome.failure.reason(), outcome.failure.exit_code
    if outcome.stopped_by is not None:
        name = signal_name(outcome.stopped_by)
        return (f"Stopped: {who} received {name} (StopTrainingJob, a spot interruption or the max run "
                "time); the training processes were asked to stop and save their state.\n",
                128 + outcome.stopped_by)
    if outcome.timed_out:
        return "Stopped: the job ran past its maximum run time (MaxRuntimeInSeconds).\n", MAX_RUN_EXIT
    return None, 0


def empty_model_dir_warning(model_dir: str) -> str | None:
    """The warning for a successful job whose model dir is empty (or missing); None otherwise."""
    try:
        if any(True for _ in os.scandir(model_dir)):
            return None
    except OSError:
        pass
    return (f"the job succeeded but its model dir {model_dir} is empty: nothing will be uploaded as the model; "
            f"save models to the directory SM_MODEL_DIR names ({model_dir}), not a hard-coded path")


def write_report(output_dir: str, failure: str | None) -> None:
    """``output/success`` (empty) or ``output/failure`` with the reason (secrets redacted).

    The stale file of the other kind is removed first; the new one appears
    whole (written beside it, then renamed).
    """
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
