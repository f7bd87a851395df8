"""Bad requests fail before anything starts: exit code 2, one line naming the field.

Every case runs the real CLI on a request that is good but for one thing, with
``--work-dir`` pointing at a directory that must not appear (no host was
prepared, none started).
"""

from __future__ import annotations

import os

import pytest

from local_jobs import mutated, request, run_local, write_request
from sagemaker_training.local import command as local, flags as local_flags, request as local_request


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
    ("unknown-field", ("Color", "blue"), "Color is not a CreateTrainingJob field local mode knows"),
    # CheckpointConfig.LocalPath is a path in each host's /opt/ml (its base dir)
    ("checkpoint-outside-opt-ml", ("CheckpointConfig", {"S3Uri": "s3://bkt/c", "LocalPath": "/tmp/ckpt"}),
     "CheckpointConfig.LocalPath /tmp/ckpt is outside /opt/ml: local mode gives each host its own /opt/ml"),
    ("checkpoint-dotdot", ("CheckpointConfig", {"S3Uri": "s3://bkt/c", "LocalPath": "/opt/ml/../etc"}),
     "CheckpointConfig.LocalPath /opt/ml/../etc is outside /opt/ml"),
    ("checkpoint-in-input", ("CheckpointConfig", {"S3Uri": "s3://bkt/c", "LocalPath": "/opt/ml/input/data/c"}),
     "CheckpointConfig.LocalPath /opt/ml/input/data/c is under /opt/ml/input"),
    ("checkpoint-not-s3", ("CheckpointConfig", {"S3Uri": "/local/ckpt"}),
     "CheckpointConfig.S3Uri is required and must be an s3:// URI"),
    ("bad-role", ("RoleArn", "admin"), "RoleArn"),
    # the toolkit's own knobs are local mode's to set, per host
    ("environment-base-dir", ("Environment", {"SAGEMAKER_BASE_DIR": "/", "MY_SETTING": "1"}),
     "Environment sets SAGEMAKER_BASE_DIR: SAGEMAKER_* variables configure the toolkit itself (base dir, ports, "
     "timeouts), which local mode sets for each host; remove it from the request."),
    ("environment-knobs", ("Environment", {"SAGEMAKER_TF_PORT": "1", "SAGEMAKER_HOST_WAIT_SECONDS": "5"}),
     "Environment sets SAGEMAKER_HOST_WAIT_SECONDS, SAGEMAKER_TF_PORT: SAGEMAKER_* variables"),
    ("max-run-huge", ("StoppingCondition.MaxRuntimeInSeconds", 10**30),
     f"StoppingCondition.MaxRuntimeInSeconds must be at most 2419200, got {10**30}."),
    # the API's name is S3DataDistributionType; S3DistributionType belongs to inputdataconfig.json only
    ("container-distribution-name", ("InputDataConfig.0.DataSource.S3DataSource.S3DistributionType",
                                     "ShardedByS3Key"),
     "InputDataConfig[0].DataSource.S3DataSource.S3DistributionType is not a field of S3DataSource: the API's "
     "name is S3DataDistributionType"),
    ("bad-distribution", ("InputDataConfig.0.DataSource.S3DataSource.S3DataDistributionType", "Sharded"),
     "InputDataConfig[0].DataSource.S3DataSource.S3DataDistributionType must be one of FullyReplicated, "
     "ShardedByS3Key"),
    # a local output location that cannot hold the artifacts is refused before anything starts
    ("output-dev-null", ("OutputDataConfig.S3OutputPath", "/dev/null"),
     "OutputDataConfig.S3OutputPath: /dev/null exists and is not a directory: give a directory for the artifacts."),
    ("output-under-proc", ("OutputDataConfig.S3OutputPath", "file:///proc/sagemaker-out"),
     "OutputDataConfig.S3OutputPath: nothing can be written under /proc (No such file or directory)"),
    ("output-under-sys", ("OutputDataConfig.S3OutputPath", "/sys/kernel/sagemaker-out"),
     "OutputDataConfig.S3OutputPath: nothing can be written under /sys/kernel"),
    # what the host's train would refuse is refused here, by the same rules, before any host starts
    ("channel-name-dotdot", ("InputDataConfig.0.ChannelName", ".."),
     "bad request: InputDataConfig[0].ChannelName: channel name '..' is not usable as a directory and variable "
     "name (empty, '.', '..', or holding '/', '=' or NUL): rename the channel, e.g. \"training\"."),
    ("hyperparameter-nul", ("HyperParameters.note", "x\x00"),
     "bad request: HyperParameters.note has a NUL character in 'x\\x00': remove it."),
    ("hyperparameter-json-nul", ("HyperParameters.note", '["a\\u0000b"]'),
     "bad request: HyperParameters.note has a NUL character in 'a\\x00b': remove it."),
    ("hyperparameter-name-equals", ("HyperParameters.a=b", "1"),
     "bad request: HyperParameters: hyperparameter name 'a=b' holds =, which no environment variable name can: rename the "
     "hyperparameter."),
    ("environment-nul", ("Environment", {"A": "x\x00y"}),
     "bad request: Environment.A has a NUL character in 'x\\x00y': remove it."),
    ("environment-name-equals", ("Environment", {"A=B": "x"}),
     "bad request: Environment: the name 'A=B' is not a variable name (a letter or '_', then letters, digits "
     "and '_'): rename it."),
    ("environment-name-digit", ("Environment", {"1A": "x"}), "bad request: Environment: the name '1A' is not"),
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
    assert not os.path.exists(tmp_path / "out"), "a bad request must not upload anything"


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
    _assert_rejected(proc, work_dir, "s3://no-such-bucket-here/data does not exist: there is no bucket "
                                     "'no-such-bucket-here'; check InputDataConfig[0].DataSource.S3DataSource.S3Uri.")


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
    body, source = local_flags.request_from_flags(args, "us-west-2", None)
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
    assert [c["DataSource"]["S3DataSource"]["S3DataDistributionType"] for c in body["InputDataConfig"]] == \
        ["FullyReplicated", "FullyReplicated"]


def test_flags_form_body_is_a_valid_create_training_job_request(tmp_path):
    """What the flags form builds passes botocore's own validation of CreateTrainingJob."""
    from botocore.session import get_session
    from botocore.validate import ParamValidator

    (tmp_path / "iris.py").write_text("")
    args = local.build_parser().parse_args([
        "--framework", "tensorflow", "--entry-point", str(tmp_path / "iris.py"), "--output-path", "s3://bkt/out",
        "--job-name", "j2", "--channel", "s3://bkt/data", "--role", "arn:aws:iam::123456789012:role/R"])
    body, _ = local_flags.request_from_flags(args, "us-west-2", None)
    shape = get_session().get_service_model("sagemaker").operation_model("CreateTrainingJob").input_shape
    report = ParamValidator().validate(body, shape)
    assert not report.has_errors(), report.generate_report()


def test_hyperparameters_decode_with_the_toolkits_one_decoder(tmp_path):
    """sagemaker_* values are read as train reads them: JSON when it parses, else the string."""
    body = request("s3://bkt/out", hyperparameters={"checkpoint_path": "s3://bkt/ckpt"})
    body["HyperParameters"]["sagemaker_submit_directory"] = "s3://bkt/code/sourcedir.tar.gz"  # a plain string
    body["HyperParameters"]["_tuning_objective_metric"] = '"s3://bkt/not-a-location"'  # tuning keys: never JSON
    assert sorted(local_request.validate(body).s3_uris()) == [
        "s3://bkt/ckpt", "s3://bkt/code/sourcedir.tar.gz", "s3://bkt/out"]


def test_output_under_a_file_is_refused(tmp_path, good):
    (tmp_path / "a-file").write_text("not a folder")
    body = mutated(good, "OutputDataConfig.S3OutputPath", str(tmp_path / "a-file" / "out"))
    work_dir = str(tmp_path / "work")
    proc, _ = run_local(["--request", write_request(tmp_path, body), "--work-dir", work_dir], timeout=60)
    _assert_rejected(proc, work_dir, f"OutputDataConfig.S3OutputPath: {tmp_path / 'a-file' / 'out'} cannot be "
                                     f"created: {tmp_path / 'a-file'} is not a directory.")


def test_request_that_is_not_utf8(tmp_path, good):
    path = tmp_path / "request.json"
    path.write_bytes(b'{"TrainingJobName": "caf\xe9"}')
    work_dir = str(tmp_path / "work")
    proc, _ = run_local(["--request", str(path), "--work-dir", work_dir], timeout=60)
    _assert_rejected(proc, work_dir, f"--request {path} is not UTF-8 text (byte b'\\xe9' at offset 24): save the "
                                     "request as UTF-8 JSON.")


def test_request_nested_too_deeply(tmp_path, good):
    text = '{"TrainingJobName": "deep", "Tags": ' + "[" * 100_000 + "]" * 100_000 + "}"
    work_dir = str(tmp_path / "work")
    proc, _ = run_local(["--request", write_request(tmp_path, text), "--work-dir", work_dir], timeout=60)
    _assert_rejected(proc, work_dir, "nests its JSON too deeply to read")


def test_channel_key_that_escapes_is_refused_naming_it(tmp_path, good, s3, s3_bucket):
    """A key with '..' would land outside the channel dir: refused while listing, before any host exists."""
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1,2\n")
    s3.put_object(Bucket=bucket, Key="data/../../escaped.txt", Body=b"outside")
    body = mutated(good, CHANNEL_URI, f"s3://{bucket}/data")
    work_dir = str(tmp_path / "work")
    proc, _ = run_local(["--request", write_request(tmp_path, body), "--work-dir", work_dir], timeout=60)
    _assert_rejected(proc, work_dir, f"InputDataConfig[0].DataSource.S3DataSource.S3Uri: refusing to download "
                                     f"s3://{bucket}/data/../../escaped.txt: its key would be written outside the "
                                     "channel directory input/data/training; rename the object.")
    assert sorted(os.listdir(tmp_path)) == ["data", "request.json"]
