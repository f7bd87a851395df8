"""Rules that used to be written twice and drifted apart: each pair of callers now gives one answer.

Locations (storage/uri.py): local mode's request and the submit dir read a ``file://`` URI the same
way, S3 schemes are case-insensitive everywhere, "prefix or object" is one rule. The region
(params.region_from), the training job's ARN, the FailureReason cut and the artifact path are
each one function that local mode and serve both call.
"""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from local_jobs import request
from sagemaker_training import environment, params
from sagemaker_training.errors import ClientError
from sagemaker_training.host import submit_dir
from sagemaker_training.local import request as local_request
from sagemaker_training.local import state as local_state
from sagemaker_training.serve import describe as serve_describe
from sagemaker_training.serve import sagemaker as serve_sagemaker
from sagemaker_training.storage import s3_client, transfer, uri


def _code_dir_with(tmp_path, name: str):
    """A directory of code at ``tmp_path/name`` holding train.py."""
    source = tmp_path / name
    source.mkdir(parents=True)
    (source / "train.py").write_text("print('hello')\n")
    return source


@pytest.mark.parametrize("form", ["localhost", "escaped", "upper-case"])
def test_local_request_and_submit_dir_read_a_file_uri_alike(tmp_path, form):
    """The drifted table of issue 19: each form names the same directory for both callers."""
    source = _code_dir_with(tmp_path, "a b" if form == "escaped" else "code")
    location = {"localhost": f"file://localhost{source}",
                "escaped": f"file://{str(source).replace(' ', '%20')}",
                "upper-case": f"FILE://{source}"}[form]

    assert local_request.normalize_location(location, "OutputDataConfig.S3OutputPath", "a dir") == str(source)

    code_dir = tmp_path / "opt-ml-code"
    submit_dir.fetch_submit_dir(location, str(code_dir))
    assert (code_dir / "train.py").read_text() == "print('hello')\n"


@pytest.mark.parametrize("location", ["file://otherhost/tmp/x", "file://relative/path"])
def test_a_file_uri_of_another_host_is_refused_by_both(tmp_path, location):
    with pytest.raises(local_request.RequestError, match="OutputDataConfig.S3OutputPath .*file:///absolute/path"):
        local_request.normalize_location(location, "OutputDataConfig.S3OutputPath", "a dir")
    with pytest.raises(ClientError, match="sagemaker_submit_directory .*file:///absolute/path"):
        submit_dir.fetch_submit_dir(location, str(tmp_path / "code"))


def test_the_s3_scheme_is_case_insensitive_everywhere(s3, s3_bucket, tmp_path):
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="data/train.csv", Body=b"1,2\n")
    location = f"S3://{bucket}/data"

    assert uri.is_s3(location) and s3_client.is_s3(location) and transfer.is_s3(location)
    assert local_request.normalize_location(location, "S3Uri", "data") == location  # kept as S3, not a path
    body = request(f"s3://{bucket}/out", {"training": location})
    job = local_request.validate(body)
    assert [c.is_s3 for c in job.channels] == [True]
    assert job.s3_uris() == [location, f"s3://{bucket}/out"]
    assert [e.relative for e in transfer.list_files(location)] == ["train.csv"]


@pytest.mark.parametrize(("location", "prefix"), [
    ("s3://bucket", True), ("s3://bucket/", True), ("s3://bucket/code/", True),
    ("s3://bucket/code/sourcedir.tar.gz", False), ("s3://bucket/code", False),
])
def test_prefix_or_object_is_one_rule(location, prefix):
    assert uri.is_prefix(location) is prefix


def test_the_submit_dir_reads_a_bucket_with_no_key_as_a_prefix(s3, s3_bucket, tmp_path):
    """``s3://bucket`` is every object in the bucket (it used to be taken as an object with no key)."""
    bucket = s3_bucket()
    s3.put_object(Bucket=bucket, Key="train.py", Body=b"print('from the bucket')\n")
    code_dir = tmp_path / "code"
    submit_dir.fetch_submit_dir(f"s3://{bucket}", str(code_dir))
    assert (code_dir / "train.py").read_text() == "print('from the bucket')\n"


def test_an_s3_object_submit_dir_is_a_tarball(s3, s3_bucket, tmp_path):
    bucket = s3_bucket()
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        payload = b"print('packed')\n"
        info = tarfile.TarInfo("train.py")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    s3.put_object(Bucket=bucket, Key="code/sourcedir.tar.gz", Body=data.getvalue())
    code_dir = tmp_path / "code"
    submit_dir.fetch_submit_dir(f"s3://{bucket}/code/sourcedir.tar.gz", str(code_dir))
    assert (code_dir / "train.py").read_text() == "print('packed')\n"


@pytest.mark.parametrize(("variables", "expected"), [
    ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "ap-south-1"}, "eu-west-1"),
    ({"AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
    ({}, None),
])
def test_one_region_rule_for_the_toolkit_the_s3_client_and_serve(tmp_path, variables, expected):
    assert params.region_from(variables) == (expected or params.DEFAULT_REGION)  # serve's default region
    assert s3_client.region_name(environ=variables) == (expected or params.DEFAULT_REGION)
    os.makedirs(tmp_path / "input" / "config")
    for name in ("hyperparameters.json", "resourceconfig.json", "inputdataconfig.json"):
        (tmp_path / "input" / "config" / name).write_text(
            '{"current_host": "algo-1", "hosts": ["algo-1"]}' if name == "resourceconfig.json" else "{}")
    env = environment.Environment(str(tmp_path), environ=variables)
    assert env.region == expected
    assert s3_client.region_name("us-west-2", environ=variables) == "us-west-2"  # given explicitly: it wins


@pytest.mark.parametrize("role", ["arn:aws:iam::123456789012:role/SageMakerRole", None, "not-an-arn"])
def test_local_mode_and_serve_give_a_job_one_arn(role):
    body = request("s3://bucket/out", job_name="Mixed-Case-Job")
    if role is None:
        del body["RoleArn"]
    else:
        body["RoleArn"] = role
    account = "123456789012" if role and role.startswith("arn:") else params.ACCOUNT
    expected = f"arn:aws:sagemaker:eu-west-1:{account}:training-job/mixed-case-job"
    assert serve_sagemaker._arn("eu-west-1", body) == expected
    if role != "not-an-arn":  # local mode refuses a malformed RoleArn before any ARN is made
        assert local_state.arn(local_request.validate(body), "eu-west-1") == expected


def test_local_mode_and_serve_cut_a_failure_reason_alike():
    reason = "ValueError: " + "x" * 3000
    state = local_state.JobState()
    state.failed(reason)
    served = serve_describe.finished_state(serve_describe.initial_state("queued"), "Failed", "Failed", "failed", reason)
    assert state.failure_reason == served["FailureReason"] == reason[:1024]


@pytest.mark.parametrize("output_path", ["s3://bucket/out", "s3://bucket/out/"])
def test_local_mode_and_serve_put_the_model_in_one_place(output_path):
    body = request(output_path, job_name="artifacts")
    local = local_request.validate(body).artifact_location("model.tar.gz")
    assert local == serve_describe.model_artifacts(body, "artifacts") == "s3://bucket/out/artifacts/output/model.tar.gz"


def test_serve_adapts_local_modes_description_of_the_same_job():
    """One renderer: the same request and state give serve and local mode the same answer, serve's
    adaptations aside (its epoch timestamps, OutputDataConfig.KmsKeyId, an S3ModelArtifacts always)."""
    import datetime
    import types

    body = request("s3://bucket/out", job_name="same-job", hyperparameters={"lr": 0.1, "db_password": "hunter2"},
                   environment={"API_TOKEN": "abc", "MODE": "fast"})
    validated = local_request.validate(body)
    start = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    state = local_state.JobState(created=start)
    state.enter("Downloading", "Downloading input data")
    state.enter("Training", "Training image download completed. Training in progress.")
    state.failed("AlgorithmError: " + "y" * 2000)

    def epoch(moment):
        return moment.timestamp()

    local = local_state.describe(validated, state, "eu-west-1", timestamp=epoch)
    job = types.SimpleNamespace(request=body, name="same-job", arn=serve_sagemaker._arn("eu-west-1", body),
                                state=local_state.state_part(state, timestamp=epoch), created=epoch(state.created),
                                modified=local["LastModifiedTime"], stop_requested=None)
    served = serve_describe.describe(job)

    assert served["OutputDataConfig"] == {"KmsKeyId": "", **local["OutputDataConfig"]}
    assert served["ModelArtifacts"] == {"S3ModelArtifacts": "s3://bucket/out/same-job/output/model.tar.gz"}
    assert "ModelArtifacts" not in local  # it failed: local mode shows no model
    shared = set(local) - {"OutputDataConfig"}
    assert {name: served[name] for name in shared} == {name: local[name] for name in shared}
    assert local["HyperParameters"]["db_password"] == local["Environment"]["API_TOKEN"] == "****"
    assert len(local["FailureReason"]) == 1024
    assert local["TrainingTimeInSeconds"] == local["BillableTimeInSeconds"] == 1  # at least a second, as AWS bills
