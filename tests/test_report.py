"""report: one function from a run's outcome to (failure text, exit code), for train, the cluster and local mode."""

from __future__ import annotations

import os
import signal
import sys

from sagemaker_training import errors
from sagemaker_training.supervision import report
from sagemaker_training.local.cluster import ClusterResult
from sagemaker_training.supervision.processes import Outcome, ProcessSpec, supervise


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


# -- the headline stays short ------------------------------------------------------

# TensorFlow's graph errors carry the stack of the failing node, twice: several KB in one message.
TF_GRAPH_ERROR = """
import sys
import tensorflow as tf
from sagemaker_training import errors

@errors.record
def main():
    tf.compat.v1.disable_eager_execution()
    with tf.compat.v1.Session() as session:
        session.run(tf.io.read_file(sys.argv[1]))

main()
"""


def test_a_tensorflow_graph_error_gets_a_short_headline_and_its_whole_message_below(tmp_path):
    missing = str(tmp_path / "missing.csv")
    spec = ProcessSpec("trainer", [sys.executable, "-c", TF_GRAPH_ERROR, missing],
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    outcome = supervise([spec], grace=1)
    text, code = report.outcome_report(outcome)
    assert code == 1
    head, _, rest = text.partition("\n")
    assert head == (f"UserError: trainer raised NotFoundError: Graph execution error: {missing}; No such file or "
                    "directory. Fix the training code; its last stderr lines follow."), head
    assert len(outcome.failure.record["message"]) > 600  # what used to be the first line
    whole = rest.split("The whole message of NotFoundError:\n", 1)[1]
    assert whole.startswith(outcome.failure.record["message"].strip())
    assert "Original stack trace for 'ReadFile'" in whole and "Last stderr lines of trainer:" in whole


def test_a_long_message_is_cut_in_the_headline_and_kept_below(tmp_path):
    message = "bad row " + "1," * 2000
    spec = ProcessSpec("trainer", [sys.executable, "-c", "from sagemaker_training import errors\n"
                                   "@errors.record\ndef main():\n    raise ValueError(%r)\nmain()\n" % message])
    outcome = supervise([spec], grace=1)
    text, _ = report.outcome_report(outcome)
    head = text.splitlines()[0]
    cut = message[: errors.HEADLINE_LIMIT - 1] + "\u2026"
    assert head == f"UserError: trainer raised ValueError: {cut}. Fix the training code; its last stderr lines follow."
    assert f"The whole message of ValueError:\n{message}\n" in text
    out = str(tmp_path / "output")
    report.write_report(out, text)
    with open(os.path.join(out, "failure"), encoding="utf-8") as f:
        assert f.readline() == head + "\n"


def test_a_toolkit_error_keeps_its_sentence_whole_up_to_the_sentence_limit():
    message = "reading checkpoints failed: " + "NoSuchKey " * 200  # a long message of S3's embedded in ours
    head, _, rest = errors.PlatformError(message, details="more").reason().partition("\n")
    assert head == (f"PlatformError: {message[: errors.SENTENCE_LIMIT - 1].rstrip()}\u2026 "
                    f"{errors.PlatformError.advice}")
    assert rest == f"\n{message}\n\nmore\n"
    sentence = "the code directory " + "/deep" * 80 + " is a mount point: unset sagemaker_submit_directory."
    assert errors.ClientError(sentence).reason() == f"ClientError: {sentence}\n"  # over 300 characters, whole
    assert errors.ClientError("short\nand plain").reason() == "ClientError: short and plain\n"  # as it was
