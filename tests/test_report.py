"""report: one function from a run's outcome to (failure text, exit code), for train, the cluster and local mode."""

from __future__ import annotations

import os
import signal
import sys

from sagemaker_training import report
from sagemaker_training.cluster import ClusterResult
from sagemaker_training.processes import Outcome, ProcessSpec, supervise


def test_a_failing_child_reports_its_own_failure_and_exit_code():
    outcome = supervise([ProcessSpec("trainer", [sys.executable, "-c", "import sys; sys.exit(3)"])], grace=1)
    text, code = report.outcome_report(outcome)
    assert code == 3
    assert text == outcome.failure.reason()
    assert ClusterResult(outcome, {}).exit_code == 3 and ClusterResult(outcome, {}).failure_reason == text


def test_stopped_timed_out_and_succeeded():
    stopped = Outcome(stopped_by=signal.SIGTERM)
    assert report.outcome_report(stopped) == (
        "Stopped: the container received SIGTERM (StopTrainingJob, a spot interruption or the max run time); "
        "the training processes were asked to stop and save their state.\n", 143)
    assert ClusterResult(stopped, {}).failure_reason.startswith("Stopped: the job received SIGTERM (")
    assert report.outcome_report(Outcome(timed_out=True)) == (
        "Stopped: the job ran past its maximum run time (MaxRuntimeInSeconds).\n", 124)
    assert report.outcome_report(Outcome()) == (None, 0)
    assert ClusterResult(Outcome(), {}).exit_code == 0 and ClusterResult(Outcome(), {}).failure_reason is None


def test_write_report_replaces_the_other_kind_and_redacts(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG")
    out = str(tmp_path / "output")
    report.write_report(out, None)
    assert os.listdir(out) == ["success"]
    report.write_report(out, "UserError: it failed with wJalrXUtnFEMI/K7MDENG in the message\n")
    assert os.listdir(out) == ["failure"]
    with open(os.path.join(out, "failure"), encoding="utf-8") as f:
        assert f.read() == "UserError: it failed with **** in the message\n"
