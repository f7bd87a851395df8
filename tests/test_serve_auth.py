"""``sagemaker-training serve`` left running: its key checked on every path, where it listens,
one server per state dir, private state, no secret quoted (issue 21, items 1, 2, 6 and 9)."""

from __future__ import annotations

import datetime
import json
import os
import stat
import subprocess
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from serve_helpers import server_fixture, CLI, Server, clean_environ, job_request, put_code, wait_for

BUCKET = "serve-auth"
TARGET = {"X-Amz-Target": "SageMaker.ListTrainingJobs", "Content-Type": "application/x-amz-json-1.1"}


server = server_fixture("serve-auth", "--bucket", BUCKET, "--max-running", "2")


def _client(server, service, key=None, secret=None, region=None):
    return boto3.session.Session().client(
        service, endpoint_url=server.url, region_name=region or server.environ["AWS_DEFAULT_REGION"],
        aws_access_key_id=key or server.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or server.environ["AWS_SECRET_ACCESS_KEY"])


def _code(call, **kwargs) -> tuple[str, str, int]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    response = info.value.response
    return response["Error"]["Code"], response["Error"].get("Message", ""), response["ResponseMetadata"]["HTTPStatusCode"]


# -- credentials -------------------------------------------------------------------------------
def test_the_exports_carry_the_state_dirs_own_key_kept_private(server):
    key, secret = server.environ["AWS_ACCESS_KEY_ID"], server.environ["AWS_SECRET_ACCESS_KEY"]
    assert key not in ("serve", "test") and len(key) == 20 and len(secret) == 40
    path = os.path.join(server.state_dir, "credentials")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == {"AccessKeyId": key, "SecretAccessKey": secret}
    assert _client(server, "sagemaker").list_training_jobs()["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_json_apis_refuse_what_the_key_did_not_sign(server):
    status, _, body = server.request("POST", "/", b"{}", TARGET, sign=False)
    assert (status, json.loads(body)["__type"]) == (403, "MissingAuthenticationTokenException")
    assert _code(_client(server, "sagemaker", key="AKIAANYONEELSE000000").list_training_jobs)[:2] == \
        ("UnrecognizedClientException", "The security token included in the request is invalid.")
    code, message, status = _code(_client(server, "logs", secret="x" * 40).describe_log_streams,
                                  logGroupName="/aws/sagemaker/TrainingJobs")
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith("The request signature we calculated does not match")
    # a signature of `x`
    headers = {**TARGET, "Authorization": f"AWS4-HMAC-SHA256 Credential={server.environ['AWS_ACCESS_KEY_ID']}/"
               f"{datetime.datetime.utcnow():%Y%m%d}/{server.environ['AWS_DEFAULT_REGION']}/sagemaker/aws4_request, "
               "SignedHeaders=host;x-amz-date, Signature=x", "X-Amz-Date": f"{datetime.datetime.utcnow():%Y%m%dT%H%M%SZ}"}
    status, _, body = server.request("POST", "/", b"{}", headers, sign=False)
    assert (status, json.loads(body)["__type"]) == (403, "InvalidSignatureException")


def test_the_scope_must_name_the_servers_region_and_the_service(server):
    status, _, body = server.request("POST", "/", b"{}", TARGET, region="evil.example.com")
    assert (status, json.loads(body)) == (403, {"__type": "InvalidSignatureException",
                                                "message": "Credential should be scoped to a valid region."})
    status, _, body = server.request("POST", "/", b"{}", TARGET, service="logs")
    assert json.loads(body)["message"] == "Credential should be scoped to correct service: 'sagemaker'."
    assert server.request("POST", "/", b"{}", TARGET)[0] == 200


def test_a_signature_older_than_15_minutes_is_expired(server):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16)
    status, _, body = server.request("POST", "/", b"{}", TARGET, when=old)
    assert status == 403 and json.loads(body)["message"].startswith("Signature expired: ")
    recent = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=14)
    assert server.request("POST", "/", b"{}", TARGET, when=recent)[0] == 200


def test_a_body_changed_after_signing_is_refused(server):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import http.client

    request = AWSRequest(method="POST", url=server.url + "/", data=b'{"MaxResults": 1}', headers=TARGET)
    SigV4Auth(Credentials(server.environ["AWS_ACCESS_KEY_ID"], server.environ["AWS_SECRET_ACCESS_KEY"]),
              "sagemaker", server.environ["AWS_DEFAULT_REGION"]).add_auth(request)
    host, port = server.url[len("http://"):].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("POST", "/", body=b'{"MaxResults": 2}', headers=dict(request.headers.items()))
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["__type"]) == (403, "InvalidSignatureException")
    connection.close()


def test_s3_and_sts_refuse_in_their_own_shapes(server):
    s3 = _client(server, "s3")
    s3.put_object(Bucket=BUCKET, Key="a.txt", Body=b"kept")
    assert _code(_client(server, "s3", secret="y" * 40).get_object, Bucket=BUCKET, Key="a.txt")[::2] == \
        ("SignatureDoesNotMatch", 403)
    assert _code(_client(server, "s3", key="AKIAANYONEELSE000000").put_object, Bucket=BUCKET, Key="a.txt",
                 Body=b"overwritten")[::2] == ("InvalidAccessKeyId", 403)
    status, _, body = server.request("GET", f"/{BUCKET}/a.txt", sign=False)
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    assert s3.get_object(Bucket=BUCKET, Key="a.txt")["Body"].read() == b"kept"
    assert _code(_client(server, "sts", key="AKIAANYONEELSE000000").get_caller_identity)[::2] == \
        ("InvalidClientTokenId", 403)
    assert _client(server, "sts").get_caller_identity()["Account"] == "000000000000"


@pytest.mark.parametrize("version", [None, "s3v4"])  # boto3's default presigned URL (SigV2 query), and SigV4's
def test_presigned_urls_are_checked_too(server, version):
    from botocore.config import Config

    s3 = boto3.session.Session().client(
        "s3", endpoint_url=server.url, region_name=server.environ["AWS_DEFAULT_REGION"],
        aws_access_key_id=server.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=server.environ["AWS_SECRET_ACCESS_KEY"], config=Config(signature_version=version))
    s3.put_object(Bucket=BUCKET, Key="presigned.txt", Body=b"shared")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "presigned.txt"}, ExpiresIn=60)
    assert ("X-Amz-Signature=" in url) is (version == "s3v4")
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"shared"
    other = url.replace("presigned.txt", "other.txt")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(other)
    assert info.value.code == 403 and b"SignatureDoesNotMatch" in info.value.read()


def test_a_job_with_a_local_submit_dir_needs_the_key(server, tmp_path):
    request = job_request("reads-passwd", BUCKET, f"file://{tmp_path}")
    status, _, body = server.request("POST", "/", json.dumps(request).encode(),
                                     {**TARGET, "X-Amz-Target": "SageMaker.CreateTrainingJob"}, sign=False)
    assert (status, json.loads(body)["__type"]) == (403, "MissingAuthenticationTokenException")
    assert _code(_client(server, "sagemaker").describe_training_job, TrainingJobName="reads-passwd")[0] == \
        "ValidationException"


def test_a_non_loopback_host_needs_allow_remote(tmp_path):
    result = subprocess.run([*CLI, "serve", "--state-dir", str(tmp_path / "state"), "--host", "0.0.0.0"],
                            capture_output=True, text=True, timeout=60, env=clean_environ())
    assert result.returncode == 2 and result.stdout == ""
    assert "--host 0.0.0.0 is not a loopback address: whoever reaches the port and holds the key runs code as " \
           "this user. Add --allow-remote" in result.stderr
    assert not os.path.exists(tmp_path / "state")
    # asked for: a warning first (192.0.2.1, TEST-NET-1, is no address of this machine: the test binds
    # nothing beyond loopback, and the bind then fails as it would for a typo)
    result = subprocess.run([*CLI, "serve", "--state-dir", str(tmp_path / "state"), "--host", "192.0.2.1",
                             "--allow-remote", "--s3-endpoint", "http://127.0.0.1:9"],
                            capture_output=True, text=True, timeout=60, env=clean_environ())
    assert "WARNING: serving on 192.0.2.1 (--allow-remote): anyone who reaches this port and holds the key in " \
           f"{tmp_path / 'state' / 'credentials'} runs code as " in result.stderr
    assert "cannot listen on 192.0.2.1:0" in result.stderr and result.returncode == 2


# -- one server per state dir, private state ------------------------------------------------------
def test_a_second_server_on_the_state_dir_exits_naming_the_lock_and_holder(server):
    sm = server.client("sagemaker")
    code = put_code(server.client("s3"), BUCKET, key="lock/sourcedir.tar.gz")
    sm.create_training_job(**job_request("held", BUCKET, code, env={"STEPS": "40", "STEP_SECONDS": "0.25"}))
    wait_for(sm, "held", statuses=("InProgress",), secondary="Training")
    result = subprocess.run([*CLI, "serve", "--state-dir", server.state_dir, "--s3-endpoint", "http://127.0.0.1:9"],
                            capture_output=True, text=True, timeout=60, env=clean_environ())
    assert result.returncode == 2 and result.stdout == ""
    assert (f"another sagemaker-training serve (PID {server.process.pid}) holds "
            f"{os.path.join(server.state_dir, 'serve.lock')}: one server per state dir") in result.stderr
    assert sm.describe_training_job(TrainingJobName="held")["TrainingJobStatus"] == "InProgress"
    assert wait_for(sm, "held")["TrainingJobStatus"] == "Completed"


def test_state_files_are_private_under_a_lax_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        server = Server(str(tmp_path / "state"), "--bucket", BUCKET).start()
    finally:
        os.umask(previous)
    try:
        sm = server.client("sagemaker")
        code = put_code(server.client("s3"), BUCKET)
        sm.create_training_job(**job_request("private", BUCKET, code, HyperParameters={
            "sagemaker_program": '"train.py"', "sagemaker_submit_directory": json.dumps(code), "db_password": "x"}))
        assert wait_for(sm, "private")["TrainingJobStatus"] == "Completed"
        state = server.state_dir
        for path in ("serve.sqlite3", "serve.sqlite3-wal", "serve.sqlite3-shm", "credentials",
                     "jobs/private/request.json", "jobs/private/supervisor-token"):
            assert stat.S_IMODE(os.stat(os.path.join(state, path)).st_mode) == 0o600, path
        for path in ("", "jobs", "jobs/private", "s3"):
            assert stat.S_IMODE(os.stat(os.path.join(state, path)).st_mode) == 0o700, path
    finally:
        server.stop()


# -- secrets --------------------------------------------------------------------------------------
def test_no_validation_message_quotes_a_secret_named_value(server):
    sm = server.client("sagemaker")
    code = put_code(server.client("s3"), BUCKET)
    base = job_request("secret-values", BUCKET, code)
    long_key = "PRIVATE-KEY-" + "k" * 2489  # 2,501 characters: over the API's 2,500
    for name, value in (("private_key", long_key), ("db_password", "line1-SECRET\nline2"),
                        ("GITHUB_PAT", "NULSECRET-hunter2\x00x")):
        hyper = {**base["HyperParameters"], name: value}
        kind, message, _ = _code(sm.create_training_job, **{**base, "HyperParameters": hyper})
        assert kind == "ValidationException", message
        assert value[:8] not in message and "SECRET" not in message and "kkkkk" not in message, message
    kind, message, _ = _code(sm.create_training_job, **{**base, "Environment": {
        "DB_PASS": "ENVSECRET\x00x", "DATABASE_URL": "postgres://u:URLSECRET@h/db"}})
    assert kind == "ValidationException" and "SECRET" not in message, message


def test_describe_and_the_log_hide_secret_named_values_and_url_passwords(server):
    sm, logs = server.client("sagemaker"), server.client("logs")
    script = """
        import os
        print("pat", os.environ["GITHUB_PAT"], "url", os.environ["DATABASE_URL"], flush=True)
    """
    code = put_code(server.client("s3"), BUCKET, key="secrets/sourcedir.tar.gz", script=script)
    env = {"GITHUB_PAT": "ghp_TOPSECRETVALUE", "DATABASE_URL": "postgres://u:URLSECRETPW@db.local/x",
           "PATH_HINT": "visible-value"}
    sm.create_training_job(**job_request("shown-secrets", BUCKET, code, env=env))
    described = wait_for(sm, "shown-secrets")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["Environment"] == {"GITHUB_PAT": "****", "DATABASE_URL": "postgres://u:****@db.local/x",
                                        "PATH_HINT": "visible-value"}
    streams = logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                        logStreamNamePrefix="shown-secrets/")["logStreams"]
    text = "\n".join(e["message"] for s in streams for e in logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=s["logStreamName"], startFromHead=True)["events"])
    assert "pat **** url postgres://u:****@db.local/x" in text
    assert "TOPSECRET" not in text and "URLSECRETPW" not in text


# -- smaller ones (item 9) ------------------------------------------------------------------------
def test_names_that_differ_in_case_share_an_arn_so_the_second_is_in_use(server):
    sm = server.client("sagemaker")
    code = put_code(server.client("s3"), BUCKET)
    arn = sm.create_training_job(**job_request("CaseJob", BUCKET, code, Tags=[{"Key": "who", "Value": "first"}]))
    kind, message, _ = _code(sm.create_training_job, **job_request("casejob", BUCKET, code,
                                                                   Tags=[{"Key": "who", "Value": "second"}]))
    assert kind == "ResourceInUse" and arn["TrainingJobArn"] in message
    assert sm.list_tags(ResourceArn=arn["TrainingJobArn"])["Tags"] == [{"Key": "who", "Value": "first"}]
    assert _code(sm.describe_training_job, TrainingJobName="casejob")[0] == "ValidationException"
    wait_for(sm, "CaseJob")


def test_tags_on_a_missing_arn_are_the_apis_error(server):
    sm = server.client("sagemaker")
    missing = "arn:aws:sagemaker:us-east-1:123456789012:training-job/never-made"
    for call, kwargs in ((sm.add_tags, {"Tags": [{"Key": "k", "Value": "v"}]}), (sm.list_tags, {}),
                         (sm.delete_tags, {"TagKeys": ["k"]})):
        kind, message, _ = _code(call, ResourceArn=missing, **kwargs)
        assert (kind, message) == ("ValidationException", f"Could not find resource {missing}: this server has no "
                                                          "training or tuning job with this ARN.")


def test_keys_with_empty_segments_do_not_alias_others(server):
    s3 = server.client("s3")
    s3.put_object(Bucket=BUCKET, Key="x", Body=b"plain x")
    for key in ("/x", "a//b"):
        kind, message, status = _code(s3.put_object, Bucket=BUCKET, Key=key, Body=b"other")
        assert (kind, status) == ("InvalidArgument", 400) and "empty path segment" in message
    assert _code(s3.copy_object, Bucket=BUCKET, Key="y", CopySource={"Bucket": BUCKET, "Key": "/x"})[0] == \
        "InvalidArgument"
    assert s3.get_object(Bucket=BUCKET, Key="x")["Body"].read() == b"plain x"


def _disk_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def test_seaweedfs_keeps_logs_and_sockets_in_the_state_dir_and_reclaims_deleted_space(tmp_path):
    import glob
    import time

    before = set(glob.glob("/tmp/seaweedfs-*.sock"))
    server = Server(str(tmp_path / "state"), "--bucket", BUCKET).start()
    data = os.path.join(server.state_dir, "s3")
    try:
        s3 = server.client("s3")
        s3.put_object(Bucket=BUCKET, Key="big.bin", Body=os.urandom(48 * 1024 * 1024))
        assert sorted(os.listdir(os.path.join(data, "run"))) == ["filer.sock", "s3.sock"]
        full = _disk_bytes(data)
        s3.delete_object(Bucket=BUCKET, Key="big.bin")
        deadline = time.monotonic() + 120
        while _disk_bytes(data) > full - 32 * 1024 * 1024:  # the vacuum after the DELETE reclaims the space
            assert time.monotonic() < deadline, f"{_disk_bytes(data)} bytes still used of {full}"
            time.sleep(0.5)
    finally:
        server.stop()
    assert os.listdir(os.path.join(data, "run")) == []
    assert os.path.isdir(os.path.join(data, "logs"))
    assert set(glob.glob("/tmp/seaweedfs-*.sock")) <= before  # its gRPC sockets (weed puts them in /tmp) too
