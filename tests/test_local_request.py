"""Bad requests fail before anything starts: exit code 2, one line naming the field.

Every case runs the real CLI on a request that is good but for one thing, with
``--work-dir`` pointing at a directory that must not appear (no host was
prepared, none started).
"""

from __future__ import annotations

import os

import pytest

from local_jobs import mutated, request, run_local, write_request
from sagemaker_training import local, local_request


@pytest.fixture
def good(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("1,2\n")
    return request(str(tmp_path / "out"), {"training": str(data)}, hyperparameters={"training_steps": 10})


CHANNEL_URI = "InputDataConfig.0.DataSource.S3DataSource.S3Uri"

CASES = [
    # (id, change: (path, value) or (path, None, delete), text the message names)
    ("no-job-name", ("TrainingJobName", None, True), "TrainingJobName is required"),
    ("bad-job-name", ("TrainingJobName", "my_job!"), "TrainingJobName"),
    ("no-algorithm", ("AlgorithmSpecification", None, True), "AlgorithmSpecification is required"),
    ("no-image", ("AlgorithmSpecification.TrainingImage", None, True), "AlgorithmSpecification.TrainingImage"),
    ("unknown-framework", ("AlgorithmSpecification.TrainingImage", "123.dkr.ecr.aws/xgboost:1"),
     "AlgorithmSpecification.TrainingImage"),
    ("pipe-mode", ("AlgorithmSpecification.TrainingInputMode", "Pipe"), "AlgorithmSpecification.TrainingInputMode"),
    ("zero-instances", ("ResourceConfig.InstanceCount", 0), "ResourceConfig.InstanceCount must be at least 1"),
    ("instances-as-string", ("ResourceConfig.InstanceCount", "2"), "ResourceConfig.InstanceCount must be an integer"),
    ("no-instance-type", ("ResourceConfig.InstanceType", None, True), "ResourceConfig.InstanceType is required"),
    ("no-resources", ("ResourceConfig", None, True), "ResourceConfig is required"),
    ("no-output", ("OutputDataConfig.S3OutputPath", None, True), "OutputDataConfig.S3OutputPath is required"),
    ("bad-output-scheme", ("OutputDataConfig.S3OutputPath", "gs://bucket/x"), "OutputDataConfig.S3OutputPath"),
    ("no-stopping-condition", ("StoppingCondition", None, True), "StoppingCondition is required"),
    ("zero-max-run", ("StoppingCondition.MaxRuntimeInSeconds", 0), "StoppingCondition.MaxRuntimeInSeconds"),
    ("hyperparameter-not-string", ("HyperParameters.training_steps", 10), "HyperParameters.training_steps"),
    ("missing-local-channel", (CHANNEL_URI, "/nonexistent/channel/data"), "InputDataConfig[0].DataSource"),
    ("no-channel-uri", (CHANNEL_URI, None, True), "InputDataConfig[0].DataSource.S3DataSource.S3Uri is required"),
    ("bad-bucket", (CHANNEL_URI, "s3://Bad_Bucket/x"), "InputDataConfig[0].DataSource.S3DataSource.S3Uri"),
    ("manifest", ("InputDataConfig.0.DataSource.S3DataSource.S3DataType", "ManifestFile"), "S3DataType"),
    ("no-channel-name", ("InputDataConfig.0.ChannelName", None, True), "InputDataConfig[0].ChannelName"),
    ("unknown-field", ("CheckpointConfig", {"S3Uri": "s3://bkt/c"}), "CheckpointConfig"),
    ("bad-role", ("RoleArn", "admin"), "RoleArn"),
]


def _assert_rejected(proc, work_dir, text):
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if "bad request" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr  # one line, the last, no traceback
    assert errors[0].startswith("sagemaker-training local: bad request: "), errors[0]
    assert text in errors[0]
    assert not os.path.exists(work_dir), "a bad request must not prepare any host"


@pytest.mark.parametrize("change,text", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request_fails_before_anything_starts(tmp_path, good, change, text):
    path, value, *delete = change
    body = mutated(good, path, value, delete=bool(delete))
    work_dir = str(tmp_path / "work")
    proc, _ = run_local(["--request", write_request(tmp_path, body), "--work-dir", work_dir], timeout=60)
    _assert_rejected(proc, work_dir, text)


def test_duplicate_channel_names(tmp_path, good):
    body = mutated(good, "InputDataConfig", good["InputDataConfig"] * 2)
    work_dir = str(tmp_path / "work")
    proc, _ = run_local(["--request", write_request(tmp_path, body), "--work-dir", work_dir], timeout=60)
    _assert_rejected(proc, work_dir, "InputDataConfig[1].ChannelName 'training' is used by two channels")


def test_malformed_json(tmp_path):
    work_dir = str(tmp_path / "work")
    proc, _ = run_local(["--request", write_request(tmp_path, '{"TrainingJobName": "x",'), "--work-dir", work_dir],
                        timeout=60)
    _assert_rejected(proc, work_dir, "is not valid JSON")


def test_empty_s3_prefix_and_missing_bucket(tmp_path, good):
    """S3 channels are listed before anything starts: an empty prefix or a missing bucket is a bad request."""
    work_dir = str(tmp_path / "work")
    out = "s3://local-test-out/jobs"
    empty = mutated(mutated(good, CHANNEL_URI, "s3://local-test-out/nothing/here"), "OutputDataConfig.S3OutputPath", out)
    proc, _ = run_local(["--request", write_request(tmp_path, empty), "--work-dir", work_dir, "--embedded-s3"],
                        timeout=60)
    _assert_rejected(proc, work_dir, "there are no objects under s3://local-test-out/nothing/here")

    no_bucket = mutated(empty, CHANNEL_URI, "s3://no-such-bucket-here/data")
    proc, _ = run_local(["--request", write_request(tmp_path, no_bucket), "--work-dir", work_dir, "--embedded-s3"],
                        timeout=60)
    _assert_rejected(proc, work_dir, "InputDataConfig[0].DataSource.S3DataSource.S3Uri: cannot list "
                                     "s3://no-such-bucket-here/data (NoSuchBucket")


@pytest.mark.parametrize("args,text", [
    (["--framework", "tensorflow", "--entry-point", "nope.py"], "--entry-point nope.py: no such file"),
    (["--framework", "tensorflow", "--entry-point", "train.py", "--instance-count", "0"],
     "ResourceConfig.InstanceCount must be at least 1"),
    (["--entry-point", "train.py"], "--framework is required"),
    (["--framework", "mxnet", "--entry-point", "train.py", "--output-path", "/tmp/x", "--channel", "train=/no/such"],
     "InputDataConfig[0].DataSource.S3DataSource.S3Uri: local path /no/such does not exist"),
    ([], "give the job as --request FILE"),
], ids=["missing-entry-point", "zero-instances", "no-framework", "missing-channel", "nothing"])
def test_bad_flags(tmp_path, args, text):
    (tmp_path / "train.py").write_text("print('hi')\n")
    work_dir = str(tmp_path / "work")
    if "--output-path" not in args and args:
        args = [*args, "--output-path", str(tmp_path / "out")]
    proc, _ = run_local([*args, "--work-dir", work_dir], timeout=60, cwd=str(tmp_path))
    _assert_rejected(proc, work_dir, text)
    assert not os.path.exists(tmp_path / "out"), "nothing is uploaded for a bad request"


def test_unknown_framework_flag_is_a_usage_error(tmp_path):
    proc, _ = run_local(["--framework", "pytorch", "--entry-point", "x.py"], timeout=60)
    assert proc.returncode == 2
    assert "--framework" in proc.stderr and "pytorch" in proc.stderr


# -- the parts, in process --------------------------------------------------------


def test_framework_from_image():
    assert local_request.framework_from_image(
        "520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow:1.4.1-cpu-py2") == "tensorflow"
    assert local_request.framework_from_image("sagemaker-training-mxnet:gpu") == "mxnet"
    assert local_request.framework_from_image("my/xgboost:1") is None


def test_flags_encode_like_the_sdk(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "iris.py").write_text("")
    args = local.build_parser().parse_args([
        "--framework", "tensorflow", "--entry-point", "iris.py", "--source-dir", str(tmp_path / "src"),
        "--hyperparameter", "learning_rate=0.1", "--hyperparameter", "name=plain text",
        "--hyperparameter", "layers=[10, 20]", "--training-steps", "1000", "--evaluation-steps", "100",
        "--checkpoint-path", "s3://bkt/ckpt", "--instance-count", "2", "--output-path", "s3://bkt/out",
        "--job-name", "j1", "--channel", "s3://bkt/data", "--channel", "test=s3://bkt/test", "--max-run", "3600"])
    body, source = local_request.request_from_flags(args, "us-west-2", None)
    hps = body["HyperParameters"]
    assert hps["learning_rate"] == "0.1" and hps["name"] == '"plain text"' and hps["layers"] == "[10, 20]"
    assert hps["training_steps"] == "1000" and hps["checkpoint_path"] == '"s3://bkt/ckpt"'
    assert hps["sagemaker_program"] == '"iris.py"'
    assert hps["sagemaker_submit_directory"] == '"s3://bkt/out/j1/source/sourcedir.tar.gz"'
    assert hps["sagemaker_region"] == '"us-west-2"' and hps["sagemaker_job_name"] == '"j1"'
    assert hps["sagemaker_container_log_level"] == "20"
    assert [c["ChannelName"] for c in body["InputDataConfig"]] == ["training", "test"]
    assert body["ResourceConfig"]["InstanceCount"] == 2
    assert body["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert source.upload_to == "s3://bkt/out/j1/source/sourcedir.tar.gz"
    request = local_request.validate(body)
    assert request.framework == "tensorflow" and request.hosts == ["algo-1", "algo-2"]
    assert sorted(request.written_s3_uris()) == ["s3://bkt/ckpt", "s3://bkt/out", "s3://bkt/out/j1/source/sourcedir.tar.gz"]
