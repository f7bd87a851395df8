"""The SDKs' own tuning cells, unchanged, against ``sagemaker-training serve``: SDK 1.72.1's
HyperparameterTuner on a legacy TensorFlow estimator (Bayesian; fit, wait, best_training_job,
attach) and SDK v2's on an MXNet script-mode estimator (Hyperband; analytics().dataframe()).
Real TensorFlow and MXNet jobs on tiny data; the objective comes from their log lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from serve_helpers import REPO, ROLE, ROWS_CSV, Server, run_client, sdk_python

SAMPLES = "sagemaker-sample-data-us-west-2"
BUCKET = "sagemaker-notebooks"
CLIENTS = os.path.join(REPO, "tests", "serve_clients")
IRIS = os.path.join(REPO, "examples", "tensorflow", "iris_dnn_classifier.py")

# MXNet script mode as users wrote it for 1.x: NDArray linear regression on the training channel,
# one "epoch N loss=..." line an epoch; the learning rate decides how far the loss falls.
MXNET_SCRIPT = """
    import argparse, os
    import mxnet as mx
    import numpy as np

    if __name__ == "__main__":
        parser = argparse.ArgumentParser()
        parser.add_argument("--learning_rate", type=float)
        parser.add_argument("--epochs", type=int)
        args, _ = parser.parse_known_args()
        rows = np.loadtxt(os.path.join(os.environ["SM_CHANNEL_TRAINING"], "rows.csv"), delimiter=",")
        x, y = mx.nd.array(rows[:, :4]), mx.nd.array(rows[:, 4])
        w = mx.nd.zeros(4)
        for epoch in range(args.epochs):
            error = mx.nd.dot(x, w) - y
            w -= args.learning_rate * 2 * mx.nd.dot(error, x) / len(rows)
            loss = float(((mx.nd.dot(x, w) - y) ** 2).mean().asscalar())
            print(f"epoch {epoch} loss={loss:.6f}", flush=True)
        mx.nd.save(os.path.join(os.environ["SM_MODEL_DIR"], "w.params"), {"w": w})
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = Server(str(tmp_path_factory.mktemp("serve-tuning-sdk") / "state"), "--region", "us-west-2",
                    "--bucket", SAMPLES, "--bucket", BUCKET, "--max-running", "2", "--stop-grace", "5").start()
    subprocess.run([sys.executable, os.path.join(REPO, "examples", "notebooks", "upload_data.py")],
                   env=server.client_environ(), check=True, capture_output=True)
    server.client("s3").put_object(Bucket=BUCKET, Key="data/rows.csv", Body=ROWS_CSV.encode())
    yield server
    server.stop()


def _value(output: str, label: str) -> str:
    return [line for line in output.splitlines() if line.startswith(label + " ")][-1][len(label) + 1:]


def test_sdk_v1_tensorflow_legacy_tuning_cell(server, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    with open(IRIS, encoding="utf-8") as f:  # the iris example, its optimizer's learning rate tuned
        text = f.read().replace("config=run_config)", "optimizer=tf.train.AdagradOptimizer(\n"
                                "        learning_rate=params['learning_rate']),\n        config=run_config)")
    (source / "iris_tuned.py").write_text(text)
    output = run_client(sdk_python("sdk-v1"), server, os.path.join(CLIENTS, "v1_tune.py"), str(source), BUCKET,
                        ROLE)[0]
    tuning, best = _value(output, "TUNING"), _value(output, "BEST")
    sm = server.client("sagemaker")
    answer = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)
    assert answer["HyperParameterTuningJobStatus"] == "Completed"
    assert answer["TrainingJobStatusCounters"]["Completed"] == 3
    assert answer["BestTrainingJob"]["TrainingJobName"] == best
    jobs = sm.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)[
        "TrainingJobSummaries"]
    accuracies = [j["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for j in jobs]
    assert answer["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(accuracies)
    rates = [float(j["TunedHyperParameters"]["learning_rate"]) for j in jobs]
    assert all(0.01 <= r <= 0.5 for r in rates) and len(set(rates)) == 3
    # what the SDK's tuner really sends: one sagemaker_job_name and checkpoint_path for every job
    # (the estimator's own name, not the training job's); each job ran under its own name
    # (TRAINING_JOB_NAME), so its checkpoints went to a path of its own under the one given
    description = sm.describe_training_job(TrainingJobName=best)
    hyperparameters = description["HyperParameters"]
    assert description["HyperParameters"]["_tuning_objective_metric"] == "accuracy"
    given = json.loads(hyperparameters["checkpoint_path"])
    assert given == f"s3://{BUCKET}/artifacts/{json.loads(hyperparameters['sagemaker_job_name'])}/checkpoints"
    prefix = given[len(f"s3://{BUCKET}/"):] + "/"
    keys = [o["Key"] for o in server.client("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    assert {key[len(prefix):].split("/")[0] for key in keys} == {j["TrainingJobName"] for j in jobs}
    assert all(key[len(prefix):].split("/")[1] == "checkpoints" for key in keys)
    logs = server.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=best)
    messages = [e["message"] for s in streams["logStreams"] for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"], startFromHead=True)["events"]]
    assert any("Saving dict for global step 40: accuracy = " in m for m in messages)
    attached = json.loads(_value(output, "ATTACHED"))
    assert attached == {"strategy": "Bayesian", "max_jobs": 3, "max_parallel_jobs": 2, "objective": "accuracy",
                        "estimator": "TensorFlow", "training_steps": 40,
                        "ranges": [["MaxValue", "0.5"], ["MinValue", "0.01"], ["Name", "learning_rate"],
                                   ["ScalingType", "Auto"]]}  # SDK 1.72.1's attach() drops the scaling
    assert answer["HyperParameterTuningJobConfig"]["ParameterRanges"]["ContinuousParameterRanges"] == [
        {"Name": "learning_rate", "MinValue": "0.01", "MaxValue": "0.5", "ScalingType": "Logarithmic"}]


def test_sdk_v2_mxnet_hyperband_tuning_cell(server, tmp_path):
    entry = tmp_path / "mx" / "regress.py"
    entry.parent.mkdir()
    entry.write_text(textwrap.dedent(MXNET_SCRIPT))
    output = run_client(sdk_python("sdk-v2"), server, os.path.join(CLIENTS, "v2_tune.py"), str(entry), BUCKET,
                        ROLE)[0]
    tuning, best = _value(output, "TUNING"), _value(output, "BEST")
    sm = server.client("sagemaker")
    answer = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning)
    assert answer["HyperParameterTuningJobStatus"] == "Completed"
    assert answer["HyperParameterTuningJobConfig"]["StrategyConfig"] == {
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 4}}
    assert answer["HyperParameterTuningJobConfig"]["RandomSeed"] == 7
    frame = json.loads(_value(output, "FRAME"))
    assert len(frame) == 4
    assert {row["TrainingJobName"] for row in frame} == {
        j["TrainingJobName"] for j in sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=tuning)["TrainingJobSummaries"]}
    scored = [row for row in frame if row["TrainingJobStatus"] == "Completed"]
    assert min(scored, key=lambda row: row["FinalObjectiveValue"])["TrainingJobName"] == best
    assert all(0.001 <= float(row["learning_rate"]) <= 0.5 for row in frame)
