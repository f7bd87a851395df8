"""Local mode end to end: ``sagemaker-training local`` as a subprocess, real S3, real frameworks.

The request-file jobs talk to an S3 endpoint outside the command (moto's server,
the ``s3_endpoint`` fixture), reached through the standard AWS variables, so that
the test can stage the channels first and read the artifacts and checkpoints
after. The flags-form job uses ``--embedded-s3`` and ``--download-artifacts``.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import textwrap
import time

import boto3
import pytest

from local_jobs import CLI, ROOT, cli_env, explain, request, run_local, write_request

BUCKET = "local-mode-tests"
REGION = "us-west-2"
TF_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow:1.4.1-cpu-py2"
MX_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/sagemaker-mxnet:1.9.1-cpu-py3"
SCRIPT_IMAGE = "local/plain-script:latest"  # names no framework: these jobs pass --framework script
# No TensorFlow worker start delay, quick peer polling (the TensorFlow runner's knobs).
TF_FAST = {"SAGEMAKER_TF_WORKER_DELAY_SECONDS": "0", "SAGEMAKER_TF_PEER_POLL_SECONDS": "0.2"}


@pytest.fixture
def s3(s3_endpoint):
    """A client of the test endpoint with the bucket, and the variables that point the CLI at it."""
    env = {"AWS_ENDPOINT_URL_S3": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    try:
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    client.env = env
    return client


def upload_dir(client, directory: str, prefix: str) -> str:
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            client.upload_file(path, BUCKET, f"{prefix}/{os.path.relpath(path, directory)}")
    return f"s3://{BUCKET}/{prefix}"


def upload_code(client, files: dict, key: str) -> str:
    """sourcedir.tar.gz of ``files`` (name -> text or a path to copy) at ``key``; returns its URI."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            if os.path.isfile(content):
                with open(content, "rb") as f:
                    data = f.read()
            else:
                data = textwrap.dedent(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    client.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    return f"s3://{BUCKET}/{key}"


def s3_tar_names(client, uri: str) -> list[str]:
    bucket, key = uri[len("s3://"):].split("/", 1)
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        return tar.getnames()


def keys(client, prefix: str) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def toolkit_hps(program: str, submit: str, job: str) -> dict:
    return {"sagemaker_program": program, "sagemaker_submit_directory": submit, "sagemaker_region": REGION,
            "sagemaker_job_name": job, "sagemaker_container_log_level": 20}


def assert_description(description: dict, body: dict, status: str, secondary: str):
    assert description["TrainingJobName"] == body["TrainingJobName"]
    assert re.fullmatch(r"arn:aws:sagemaker:[a-z0-9-]+:\d{12}:training-job/[a-z0-9-]+",
                        description["TrainingJobArn"]), description["TrainingJobArn"]
    assert description["TrainingJobStatus"] == status
    assert description["SecondaryStatus"] == secondary
    for field in ("AlgorithmSpecification", "HyperParameters", "InputDataConfig", "OutputDataConfig",
                  "ResourceConfig", "RoleArn"):
        assert description[field] == body[field], field
    assert description["StoppingCondition"]["MaxRuntimeInSeconds"] == body["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert description["CreationTime"] <= description["TrainingStartTime"] <= description["TrainingEndTime"]
    assert description["TrainingTimeInSeconds"] >= 1
    assert description["BillableTimeInSeconds"] == description["TrainingTimeInSeconds"]
    assert description["SecondaryStatusTransitions"][-1]["Status"] == secondary


# -- the frameworks, distributed, from request files -------------------------------------


def test_tensorflow_parameter_server_job_on_two_hosts(tmp_path, s3):
    job = "tf-ps-local"
    data = upload_dir(s3, os.path.join(ROOT, "examples", "tensorflow", "data"), "iris/data")
    code = upload_code(s3, {"iris_dnn_classifier.py": os.path.join(ROOT, "examples", "tensorflow",
                                                                   "iris_dnn_classifier.py")},
                       f"code/{job}/source/sourcedir.tar.gz")
    checkpoints = f"s3://{BUCKET}/checkpoints/{job}"
    body = request(f"s3://{BUCKET}/output", {"training": data}, job_name=job, image=TF_IMAGE, instance_count=2,
                   hyperparameters={"training_steps": 30, "evaluation_steps": 2, "checkpoint_path": checkpoints,
                                    **toolkit_hps("iris_dnn_classifier.py", code, job)})
    started = time.monotonic()
    # The toolkit's own knobs reach the hosts from local mode's environment (a request may not set them).
    proc, description = run_local(["--request", write_request(tmp_path, body)], env={**s3.env, **TF_FAST},
                                  timeout=240)
    assert proc.returncode == 0, explain(proc)
    assert_description(description, body, "Completed", "Completed")
    model = f"s3://{BUCKET}/output/{job}/output/model.tar.gz"
    assert description["ModelArtifacts"] == {"S3ModelArtifacts": model}
    names = s3_tar_names(s3, model)
    assert any(re.fullmatch(r"export/Servo/\d+/saved_model\.pb", n) for n in names), names
    assert f"output/{job}/output/output.tar.gz" in keys(s3, f"output/{job}/output/")
    assert any(k.endswith(".index") for k in keys(s3, f"checkpoints/{job}/")), "checkpoints reach S3"
    for host in ("algo-1", "algo-2"):
        assert f"[{host}]" in proc.stderr
    assert proc.stdout.lstrip().startswith("{"), "stdout is the description only"
    print(f"2-host TensorFlow job: {time.monotonic() - started:.1f}s")


MNIST_WORKER = """
    import json, os
    import mnist

    def train(output_data_dir, **kwargs):
        model = mnist.train(**kwargs)
        kv = model._kvstore
        with open(os.path.join(output_data_dir, "kvstore.json"), "w") as f:
            json.dump({"type": kv.type, "num_workers": kv.num_workers, "rank": kv.rank}, f)
        return model
"""


def test_mxnet_dist_sync_job_on_two_hosts(tmp_path, s3):
    from mxnet_jobs import mnist_channels

    job = "mx-dist-sync-local"
    slices = mnist_channels(str(tmp_path / "mnist"), train=600, test=100)
    channels = {name: upload_dir(s3, path, f"mnist/{name}") for name, path in slices.items()}
    code = upload_code(s3, {"worker.py": MNIST_WORKER,
                            "mnist.py": os.path.join(ROOT, "examples", "mxnet", "mnist.py")},
                       f"code/{job}/source/sourcedir.tar.gz")
    body = request(f"s3://{BUCKET}/output", channels, job_name=job, image=MX_IMAGE, instance_count=2,
                   hyperparameters={"learning_rate": 0.1, "epochs": 1, **toolkit_hps("worker.py", code, job)})
    work = tmp_path / "work"
    proc, description = run_local(["--request", write_request(tmp_path, body), "--work-dir", str(work)],
                                  env=s3.env, timeout=240)
    assert proc.returncode == 0, explain(proc)
    assert_description(description, body, "Completed", "Completed")
    model = description["ModelArtifacts"]["S3ModelArtifacts"]
    assert sorted(s3_tar_names(s3, model)) == ["model-0000.params", "model-shapes.json", "model-symbol.json"]
    seen = []
    for host in ("algo-1", "algo-2"):
        with open(work / host / "output" / "data" / "kvstore.json", encoding="utf-8") as f:
            seen.append(json.load(f))
        assert sorted(os.listdir(work / host / "input" / "data")) == ["test", "train"]
    assert [(s["type"], s["num_workers"]) for s in seen] == [("dist_sync", 2)] * 2
    assert sorted(s["rank"] for s in seen) == [0, 1]
    assert "kvstore.json" in s3_tar_names(s3, f"s3://{BUCKET}/output/{job}/output/output.tar.gz")


# -- how jobs end ------------------------------------------------------------------------


def test_a_failing_host_fails_the_job_with_the_users_message(tmp_path, s3):
    job = "failing-local"
    code = upload_code(s3, {"train.py": """
        import os, time
        if os.environ["SM_CURRENT_HOST"] == "algo-2":
            raise ValueError("learning_rate must be below 1, got 7")
        time.sleep(120)
    """}, f"code/{job}/source/sourcedir.tar.gz")
    data = upload_dir(s3, os.path.join(ROOT, "examples", "tensorflow", "data"), "failing/data")
    body = request(f"s3://{BUCKET}/output", {"training": data}, job_name=job, image=SCRIPT_IMAGE, instance_count=2,
                   hyperparameters=toolkit_hps("train.py", code, job))
    started = time.monotonic()
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script",
                                   "--stop-grace", "3"], env=s3.env, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, explain(proc)
    assert_description(description, body, "Failed", "Failed")
    reason = description["FailureReason"]
    assert len(reason) <= 1024
    assert "ValueError: learning_rate must be below 1, got 7" in reason
    assert "algo-2" in reason.splitlines()[0]
    assert "ModelArtifacts" not in description
    assert keys(s3, f"output/{job}/output/model.tar.gz") == [], "no model is packed for a failed job"
    assert elapsed < 60, "the other host is stopped, not waited for"


def test_max_runtime_stops_a_sleeping_job(tmp_path):
    """MaxRuntimeInSeconds: every host gets SIGTERM, then the job is Stopped / MaxRuntimeExceeded."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(textwrap.dedent("""
        import os, signal, sys, time
        def on_term(signum, frame):
            open(os.path.join(os.environ["SM_MODEL_DIR"], "saved-on-sigterm"), "w").close()
            sys.exit(0)
        signal.signal(signal.SIGTERM, on_term)
        print("sleeping", flush=True)
        time.sleep(600)
    """))
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.csv").write_text("1\n")
    job = "sleepy-local"
    body = request(str(tmp_path / "out"), {"training": str(data)}, job_name=job, image=SCRIPT_IMAGE,
                   instance_count=2, max_run=4,
                   hyperparameters=toolkit_hps("train.py", str(code), job))
    started = time.monotonic()
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script",
                                   "--stop-grace", "5"], timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, explain(proc)
    assert_description(description, body, "Stopped", "MaxRuntimeExceeded")
    assert 4 <= elapsed < 30, elapsed
    # As on the platform, what the job saved during the grace period is uploaded.
    model = tmp_path / "out" / job / "output" / "model.tar.gz"
    assert description["ModelArtifacts"]["S3ModelArtifacts"] == f"file://{model}"
    with tarfile.open(model) as tar:
        assert tar.getnames() == ["saved-on-sigterm"]


# -- the flags form ------------------------------------------------------------------------

FLAGS_SCRIPT = """
    import argparse, json, os
    import helper
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--optimizer")
    args = parser.parse_args()
    channel = os.environ["SM_CHANNEL_TRAINING"]
    result = {"epochs": args.epochs, "optimizer": args.optimizer, "files": sorted(os.listdir(channel)),
              "helper": helper.NAME, "hosts": json.loads(os.environ["SM_HOSTS"]),
              "module_dir": os.environ["SM_MODULE_DIR"]}
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "result.json"), "w") as f:
        json.dump(result, f)
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "metrics.json"), "w") as f:
        json.dump({"loss": 0.1}, f)
"""


def test_flags_form_with_embedded_s3(tmp_path):
    """The SDK's fit(): local data uploaded to S3 first, source dir packed to the code location,
    every URI of the job on the embedded endpoint; artifacts copied out before it stops."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "entry.py").write_text(textwrap.dedent(FLAGS_SCRIPT))
    (src / "helper.py").write_text("NAME = 'packed with the source dir'\n")
    data = tmp_path / "data"
    (data / "part").mkdir(parents=True)
    (data / "a.csv").write_text("1,2\n")
    (data / "part" / "b.csv").write_text("3,4\n")
    artifacts = tmp_path / "artifacts"
    proc, description = run_local([
        "--embedded-s3", "--upload-data", f"{data}=s3://flags-data/train",
        "--framework", "script", "--entry-point", "entry.py", "--source-dir", str(src),
        "--hyperparameter", "epochs=3", "--hyperparameter", "optimizer=adam",
        "--channel", "s3://flags-data/train", "--output-path", "s3://flags-out/jobs",
        "--code-location", "s3://flags-code/prefix", "--instance-count", "2", "--max-run", "300",
        "--job-name", "flags-job", "--download-artifacts", str(artifacts), "--region", REGION,
    ], timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert description["TrainingJobStatus"] == "Completed"
    hps = description["HyperParameters"]
    assert hps["epochs"] == "3" and hps["optimizer"] == '"adam"'
    assert json.loads(hps["sagemaker_submit_directory"]) == "s3://flags-code/prefix/flags-job/source/sourcedir.tar.gz"
    assert json.loads(hps["sagemaker_program"]) == "entry.py"
    assert json.loads(hps["sagemaker_job_name"]) == "flags-job"
    assert json.loads(hps["sagemaker_region"]) == REGION
    assert description["InputDataConfig"][0]["ChannelName"] == "training"
    assert description["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://flags-data/train"
    assert description["ResourceConfig"]["InstanceCount"] == 2
    assert description["StoppingCondition"] == {"MaxRuntimeInSeconds": 300}
    assert description["ModelArtifacts"]["S3ModelArtifacts"] == "s3://flags-out/jobs/flags-job/output/model.tar.gz"
    with tarfile.open(artifacts / "flags-job" / "model.tar.gz") as tar:
        result = json.load(tar.extractfile("result.json"))
    assert result == {"epochs": 3, "optimizer": "adam", "files": ["a.csv", "part"],
                      "helper": "packed with the source dir", "hosts": ["algo-1", "algo-2"],
                      "module_dir": "s3://flags-code/prefix/flags-job/source/sourcedir.tar.gz"}
    with tarfile.open(artifacts / "flags-job" / "output.tar.gz") as tar:
        assert tar.getnames() == ["metrics.json"]
    assert "embedded S3 endpoint on http://127.0.0.1:" in proc.stderr


def test_sharded_local_channel_and_local_output(tmp_path):
    """No S3 at all: a local channel dealt out by ShardedByS3Key, artifacts to a local output path."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "train.py").write_text(textwrap.dedent("""
        import json, os
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "files.json"), "w") as f:
            json.dump(sorted(os.listdir(os.environ["SM_CHANNEL_TRAINING"])), f)
    """))
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        (data / f"part-{i}.csv").write_text(f"{i}\n")
    body = request(f"file://{tmp_path / 'out'}", {"training": str(data)}, job_name="sharded", image=SCRIPT_IMAGE,
                   instance_count=2, hyperparameters=toolkit_hps("train.py", str(code), "sharded"))
    body["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataDistributionType"] = "ShardedByS3Key"
    work = tmp_path / "work"
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script",
                                   "--work-dir", str(work)], timeout=60)
    assert proc.returncode == 0, explain(proc)
    shares = {}
    for host in ("algo-1", "algo-2"):
        with open(work / host / "model" / "files.json", encoding="utf-8") as f:
            shares[host] = json.load(f)
    assert shares == {"algo-1": ["part-0.csv", "part-2.csv", "part-4.csv"], "algo-2": ["part-1.csv", "part-3.csv"]}
    with open(work / "algo-1" / "input" / "config" / "inputdataconfig.json", encoding="utf-8") as f:
        assert json.load(f)["training"]["S3DistributionType"] == "ShardedByS3Key"
    assert description["ModelArtifacts"]["S3ModelArtifacts"] == f"file://{tmp_path / 'out' / 'sharded'}/output/model.tar.gz"
    shutil.rmtree(work)


# -- nothing lost, nothing clobbered ------------------------------------------------------


def _script_job(tmp_path, script: str, job: str, output=None, hyperparameters=None, **kwargs) -> dict:
    """A request for a plain-script job with a local channel and (by default) a local output dir."""
    code = tmp_path / f"code-{job}"
    code.mkdir(exist_ok=True)
    (code / "train.py").write_text(textwrap.dedent(script))
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "x.csv").write_text("1\n")
    return request(str(output or tmp_path / "out"), {"training": str(data)}, job_name=job, image=SCRIPT_IMAGE,
                   hyperparameters={**toolkit_hps("train.py", str(code), job), **(hyperparameters or {})},
                   **kwargs)


def test_the_description_never_shows_a_secret(tmp_path):
    """Secret-named HyperParameters and Environment values are **** in the
    DescribeTrainingJob JSON on stdout; the job itself gets the real values."""
    script = """
        import os, sys
        assert os.environ["DB_PASSWORD"] == "ENVSEKRIT1" and "TOKSEKRIT1" in sys.argv, sys.argv
    """
    body = _script_job(tmp_path, script, "secrets", hyperparameters={"api_token": "TOKSEKRIT1", "epochs": 2},
                       environment={"DB_PASSWORD": "ENVSEKRIT1", "MODE": "fast"})
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script"], timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert "SEKRIT1" not in proc.stdout and "SEKRIT1" not in proc.stderr
    assert description["HyperParameters"]["api_token"] == "****"
    assert description["HyperParameters"]["epochs"] == "2"
    assert description["Environment"] == {"DB_PASSWORD": "****", "MODE": "fast"}


def test_a_job_leaves_no_lock_file_behind(tmp_path):
    body = _script_job(tmp_path, "print('hi')", "unlocked")
    temp = tmp_path / "tmp"
    temp.mkdir()
    work = tmp_path / "work"
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script",
                                   "--work-dir", str(work)], env={"TMPDIR": str(temp)}, timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert description["TrainingJobStatus"] == "Completed"
    assert [os.listdir(temp / d) for d in os.listdir(temp) if d.startswith("sagemaker-training-local-")] == [[]]
    assert not os.path.exists(work / ".sagemaker-local.lock")


def test_a_lock_removed_between_open_and_lock_is_not_held(tmp_path, monkeypatch):
    """The flock+unlink race: a claimant opens the lock file, its holder
    removes it and lets go, the claimant locks the removed file. It must
    notice (the path no longer names that file) and lock the file at the path."""
    import fcntl

    from sagemaker_training.local import locks as file_lock

    path = str(tmp_path / "locks" / "job.lock")
    holder = file_lock.acquire(path, "busy")
    with pytest.raises(file_lock.Busy, match="^busy$"):
        file_lock.acquire(path, "busy")
    real_flock, calls = fcntl.flock, []

    def flock_after_the_holder_let_go(f, how):
        calls.append(how)
        if len(calls) == 1:
            file_lock.release(holder, path)  # between the claimant's open and its lock
        return real_flock(f, how)

    monkeypatch.setattr(file_lock.fcntl, "flock", flock_after_the_holder_let_go)
    claimant = file_lock.acquire(path, "busy")
    assert len(calls) == 2  # it noticed, and started again on the file now at the path
    assert os.stat(path).st_ino == os.fstat(claimant.fileno()).st_ino
    monkeypatch.setattr(file_lock.fcntl, "flock", real_flock)
    with pytest.raises(file_lock.Busy):
        file_lock.acquire(path, "busy")  # the live file is held
    file_lock.release(claimant, path)
    assert not os.path.exists(path)


def test_work_dir_is_kept_when_the_artifacts_cannot_reach_the_output(tmp_path):
    """The output location breaks while the job trains: the model stays on disk, and the job says where."""
    out = tmp_path / "out"
    body = _script_job(tmp_path, """
        import json, os
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "weights.bin"), "w") as f:
            f.write("trained")
        with open(json.loads(os.environ["SM_HPS"])["block"], "w") as f:  # the output dir becomes a file
            f.write("in the way")
    """, "blocked-output", output=out, hyperparameters={"block": str(out)})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script"],
                                  env={"TMPDIR": str(scratch)}, timeout=120)
    assert proc.returncode == 1, explain(proc)
    [work] = [p for p in scratch.iterdir() if p.name.startswith("sagemaker-local-blocked-output-")]
    model_dir = work / "algo-1" / "model"
    assert description["TrainingJobStatus"] == "Failed"
    assert description["FailureReason"].splitlines()[0] == (
        f"ClientError: cannot write {out}/blocked-output/output/model.tar.gz (OutputDataConfig.S3OutputPath): "
        f"Not a directory. The artifacts are kept in {model_dir}.")
    assert (model_dir / "weights.bin").read_text() == "trained"
    assert f"work dir kept: {work}: artifacts did not reach {out}/blocked-output/output/; they are in " \
           f"{model_dir}" in proc.stderr


def _refusal(proc) -> str:
    """The one-line reason of a refused request (exit 2), without the command's prefix."""
    assert proc.returncode == 2, explain(proc)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("sagemaker-training local: bad request: "), explain(proc)
    return last[len("sagemaker-training local: bad request: "):]


def test_a_second_job_with_the_same_name_and_output_is_refused(tmp_path):
    """As the API refuses a duplicate TrainingJobName (ResourceInUse): while the first runs, and after."""
    started = tmp_path / "started"
    release = tmp_path / "release"
    body = _script_job(tmp_path, f"""
        import os, time
        open({str(started)!r}, "w").close()
        while not os.path.exists({str(release)!r}):
            time.sleep(0.05)
        with open(os.path.join(os.environ["SM_MODEL_DIR"], "first.txt"), "w") as f:
            f.write("first")
    """, "same-name")
    first = subprocess.Popen([*CLI, "--request", write_request(tmp_path, body, "first.json"), "--framework",
                              "script", "--work-dir", str(tmp_path / "work-1")], env=cli_env(),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.05)
        second = _script_job(tmp_path, "print('second')", "same-name")
        proc, _ = run_local(["--request", write_request(tmp_path, second, "second.json"), "--framework", "script",
                             "--work-dir", str(tmp_path / "work-2")], timeout=60)
        assert _refusal(proc) == (
            f"ResourceInUse: training job 'same-name' already writes to "
            f"{tmp_path / 'out'}/same-name/output/: give this job another TrainingJobName (it is running).")
        assert not (tmp_path / "work-2").exists()
        # another job in the first one's work dir would delete its hosts' dirs: refused too
        other = _script_job(tmp_path, "print('other')", "other-name")
        proc, _ = run_local(["--request", write_request(tmp_path, other, "other.json"), "--framework", "script",
                             "--work-dir", str(tmp_path / "work-1")], timeout=60)
        assert _refusal(proc) == (
            f"ResourceInUse: the work dir {tmp_path / 'work-1'} is in use by another local job: give another "
            "--work-dir.")
        assert (tmp_path / "work-1" / "algo-1" / "input" / "config").is_dir()
    finally:
        release.touch()
        stdout, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    model = tmp_path / "out" / "same-name" / "output" / "model.tar.gz"
    with tarfile.open(model) as tar:
        assert tar.getnames() == ["first.txt"]
    # once the first has finished, its artifacts still hold the name
    proc, _ = run_local(["--request", write_request(tmp_path, second, "second.json"), "--framework", "script"],
                        timeout=60)
    assert _refusal(proc) == (
        f"ResourceInUse: training job 'same-name' already writes to "
        f"{tmp_path / 'out'}/same-name/output/: give this job another TrainingJobName (its artifacts are there: "
        "model.tar.gz, output.tar.gz), or remove them.")
    with tarfile.open(model) as tar:
        assert tar.getnames() == ["first.txt"]


def test_a_model_dir_link_to_the_root_is_packed_as_a_link(tmp_path):
    """The packer packs what is in the model dir: a link to / is one link entry, not the file system."""
    body = _script_job(tmp_path, """
        import os
        model = os.environ["SM_MODEL_DIR"]
        os.symlink("/", os.path.join(model, "root"))
        os.symlink("/etc/passwd", os.path.join(model, "passwords"))
        with open(os.path.join(model, "weights.bin"), "w") as f:
            f.write("w")
    """, "linked-model")
    started = time.monotonic()
    proc, description = run_local(["--request", write_request(tmp_path, body), "--framework", "script"],
                                  timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert time.monotonic() - started < 60
    with tarfile.open(tmp_path / "out" / "linked-model" / "output" / "model.tar.gz") as tar:
        members = {m.name: (m.type, m.linkname) for m in tar.getmembers()}
    assert members == {"passwords": (tarfile.SYMTYPE, "/etc/passwd"), "root": (tarfile.SYMTYPE, "/"),
                       "weights.bin": (tarfile.REGTYPE, "")}


def test_prepare_only_writes_each_config_once_with_the_code_in_place(tmp_path):
    body = _script_job(tmp_path, "print('hi')", "prepared")
    work = tmp_path / "work"
    proc, _ = run_local(["--request", write_request(tmp_path, body), "--framework", "script", "--prepare-only",
                         "--work-dir", str(work)], timeout=60)
    assert proc.returncode == 0, explain(proc)
    with open(work / "algo-1" / "input" / "config" / "hyperparameters.json", encoding="utf-8") as f:
        written = json.load(f)
    expected = dict(body["HyperParameters"])
    del expected["sagemaker_submit_directory"]  # train uses code/ as it is
    assert written == expected
    assert (work / "algo-1" / "code" / "train.py").read_text() == "print('hi')"
    assert (work / "algo-1" / "input" / "data" / "training" / "x.csv").read_text() == "1\n"


# -- the parts, in process ------------------------------------------------------------------


def test_embedded_s3_is_handed_over_not_put_into_the_environment(tmp_path):
    from sagemaker_training.storage import transfer as storage
    from sagemaker_training.local.embedded_s3 import EmbeddedS3, overlay

    before = dict(os.environ)
    with EmbeddedS3("us-west-2") as embedded:
        assert dict(os.environ) == before
        variables = embedded.environ
        assert variables["AWS_ENDPOINT_URL_S3"] == embedded.endpoint
        assert variables["AWS_PROFILE"] is None and "AWS_PROFILE" not in overlay(variables)
        client = storage.s3_client(environ=overlay(variables))
        storage.create_bucket("handed-over", client=client)
        (tmp_path / "f").write_text("x")
        storage.store(str(tmp_path / "f"), "s3://handed-over/f", client=client)
        assert storage.list_prefix("s3://handed-over/", client=client) == ["f"]
    assert dict(os.environ) == before


def test_describe_is_a_function_of_the_state():
    from sagemaker_training.local import request as local_request, state as local_state

    body = request("s3://bkt/out", job_name="described")
    job = local_request.validate(body)
    state = local_state.JobState()
    first = local_state.describe(job, state, "us-west-2")
    assert (first["TrainingJobStatus"], first["SecondaryStatus"]) == ("InProgress", "Starting")
    assert "TrainingStartTime" not in first and "ModelArtifacts" not in first
    state.enter("Downloading", "Downloading input data")
    state.enter("Training", "Training in progress.")
    assert local_state.describe(job, state, "us-west-2")["SecondaryStatus"] == "Training"
    state.completed("s3://bkt/out/described/output/model.tar.gz")
    done = local_state.describe(job, state, "us-west-2", timestamp=lambda moment: moment.timestamp())
    assert done["TrainingJobStatus"] == "Completed"
    assert done["ModelArtifacts"] == {"S3ModelArtifacts": "s3://bkt/out/described/output/model.tar.gz"}
    assert [t["Status"] for t in done["SecondaryStatusTransitions"]] == [
        "Starting", "Downloading", "Training", "Completed"]
    assert all(isinstance(t["StartTime"], float) for t in done["SecondaryStatusTransitions"])
    assert done["TrainingJobArn"] == "arn:aws:sagemaker:us-west-2:123456789012:training-job/described"
    assert done == local_state.describe(job, state, "us-west-2", timestamp=lambda moment: moment.timestamp())


def test_state_reports_each_change_once():
    from sagemaker_training.local import state as local_state

    seen = []
    state = local_state.JobState(on_change=lambda s: seen.append((s.status, s.secondary)))
    state.enter("Downloading", "Downloading input data")
    state.failed("UserError: it broke\nmore")
    assert seen == [("InProgress", "Starting"), ("InProgress", "Downloading"), ("Failed", "Failed")]
    assert state.transitions[-1]["StatusMessage"] == "UserError: it broke"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "log-file"])
def test_progress_output(terminal):
    from sagemaker_training.local.progress import Log, Transfer

    stream = _Terminal() if terminal else io.StringIO()
    with Transfer(Log(stream), "channel training <- s3://b/data", 3 * 1024 * 1024, 3) as progress:
        for _ in range(3):
            progress(1024 * 1024)
    text = stream.getvalue()
    if terminal:  # tqdm's bar, drawn in place, ends full
        assert "\r" in text and "sagemaker-training local: channel training <- s3://b/data" in text
        assert "100%" in text and "3.00M/3.00M" in text
    else:
        assert re.fullmatch(r"sagemaker-training local: channel training <- s3://b/data: 3 files, 3\.0 MB in "
                            r"\d+\.\ds\n", text), text


def test_checkpoint_config_a_job_stopped_by_sigterm_resumes_when_run_again(tmp_path, s3):
    """CheckpointConfig: the hosts' checkpoints/ dir is uploaded to S3Uri while the job runs and at
    its end (a SIGTERM included), and a new job with the same S3Uri finds it restored before its
    script starts."""
    script = """
        import os, time
        ckpt = os.path.join(os.path.dirname(os.environ["SM_MODEL_DIR"]), "checkpoints")
        found = sorted(os.listdir(ckpt))
        print("restored: " + (",".join(found) if found else "-"), flush=True)
        for i in range(len(found), len(found) + int(os.environ["STEPS"])):
            with open(os.path.join(ckpt, f"step-{i}"), "w") as f:
                f.write(str(i))
            time.sleep(0.2)
    """
    prefix = f"ckpt-{os.getpid()}-{time.time_ns()}"
    checkpoint = {"S3Uri": f"s3://{BUCKET}/{prefix}"}
    env = {**s3.env, "SAGEMAKER_CHECKPOINT_SYNC_SECONDS": "0.3"}

    def keys():
        return sorted(o["Key"].rsplit("/", 1)[1]
                      for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", []))

    body = _script_job(tmp_path, script, "ckpt-first", environment={"STEPS": "600"})
    body["CheckpointConfig"] = checkpoint
    first = subprocess.Popen([*CLI, "--request", write_request(tmp_path, body, "first.json"), "--framework",
                              "script", "--work-dir", str(tmp_path / "work-1")], env=cli_env(env),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while len(keys()) < 3:  # uploaded as they appear
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.2)
    finally:
        first.terminate()
        stdout, stderr = first.communicate(timeout=60)
    description = json.loads(stdout[stdout.find("{"):])
    assert (description["TrainingJobStatus"], description["SecondaryStatus"]) == ("Stopped", "Stopped"), stderr
    assert "restored: -" in stderr
    written = sorted(os.listdir(tmp_path / "work-1" / "algo-1" / "checkpoints"))
    assert len(written) >= 3 and keys() == written  # the last sync took every file written before the stop

    second = _script_job(tmp_path, script, "ckpt-second", environment={"STEPS": "1"})
    second["CheckpointConfig"] = checkpoint
    proc, description = run_local(["--request", write_request(tmp_path, second, "second.json"), "--framework",
                                   "script", "--work-dir", str(tmp_path / "work-2")], env=env, timeout=120)
    assert description["TrainingJobStatus"] == "Completed", explain(proc)
    assert f"restored: {','.join(written)}" in proc.stderr
    assert keys() == sorted([*written, f"step-{len(written)}"])
