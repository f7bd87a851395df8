"""The SageMaker Python SDK's own local mode driving the images (pytest marker ``docker``).

SDK 1.72.1 with PyYAML, its local mode's one extra need (a virtualenv of its own, tests/serve_helpers.py's ``sdk_python``) runs unchanged with
``train_instance_type='local'`` and ``image_name=`` one of the images tests/test_docker.py builds:
it writes /opt/ml for every host itself and starts them with Debian's ``docker-compose`` on its
network ``sagemaker-local``, then packs every host's /opt/ml/model into ``model.tar.gz``.

* the seed's TensorFlow iris estimator (legacy mode) on one instance, local_code off: the SDK
  uploads the code to S3 and the container fetches it, and writes its checkpoints there, from
  moto's server on this machine (bound to the Docker bridge's address, which the containers
  reach; the SDK hands the endpoint to them as ``S3_ENDPOINT_URL``); the SDK uploads the
  model.tar.gz there;
* the seed's MXNet mnist (legacy ``train()``) on two instances with ``local_code`` on (the code
  mounted, the artifacts left in a local ``file://`` output path): ``dist_sync`` across the
  two containers.

Nothing here reaches beyond this machine: the images are present (the SDK pulls only what is
missing, and only ECR images), and S3 is moto.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import textwrap

import pytest

from mxnet_jobs import mnist_channels
from serve_helpers import ROLE, clean_environ, sdk_python
from test_docker import IRIS, MNIST, build_images, docker

pytestmark = pytest.mark.docker

REGION = "us-west-2"

DRIVER = """
    import json, os, sys
    import boto3
    from sagemaker.local import LocalSession
    from sagemaker.mxnet import MXNet
    from sagemaker.tensorflow import TensorFlow

    spec = json.loads(sys.argv[1])
    boto_session = boto3.Session(region_name=spec["region"])
    session = LocalSession(boto_session=boto_session, s3_endpoint_url=spec.get("s3"))
    common = dict(role=spec["role"], train_instance_type="local", image_name=spec["image"],
                  sagemaker_session=session, output_path=spec["output_path"], base_job_name=spec["name"])
    if spec["job"] == "tensorflow":
        estimator = TensorFlow(entry_point="iris_dnn_classifier.py", source_dir=spec["source_dir"],
                               framework_version="1.11", py_version="py2", train_instance_count=1,
                               training_steps=200, evaluation_steps=10, code_location=spec["code_location"],
                               **common)
    else:
        session.config = {"local": {"local_code": True}}
        estimator = MXNet(entry_point="mnist.py", source_dir=spec["source_dir"], framework_version="1.6.0",
                          py_version="py3", train_instance_count=2,
                          hyperparameters={"learning_rate": 0.1, "epochs": 1}, **common)
    estimator.fit(spec["inputs"])
    description = estimator.latest_training_job.describe()
    print("RESULT " + json.dumps({"model_data": estimator.model_data, "status": description["TrainingJobStatus"],
                                  "hyperparameters": estimator.hyperparameters()}))
"""


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return build_images(tmp_path_factory)


def _compose_leftovers() -> set:
    """Containers docker-compose made (the SDK leaves its stopped ones behind)."""
    listed = docker("ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project").stdout
    return set(listed.split())


@pytest.fixture(scope="module")
def sdk():
    """SDK 1.72.1's python; the containers and the network its local mode leaves are removed after."""
    before = _compose_leftovers()
    had_network = docker("network", "inspect", "sagemaker-local", check=False).returncode == 0
    yield sdk_python("sdk-v1-local")
    for container in sorted(_compose_leftovers() - before):
        docker("rm", "-f", container, check=False)
    if not had_network:
        docker("network", "rm", "sagemaker-local", check=False)


@pytest.fixture(scope="module")
def bridge_s3():
    """moto's S3 (and STS) on the Docker bridge's address of this machine: the SDK and the
    containers reach it; nothing off this machine does (the address is the host's own)."""
    from moto.server import ThreadedMotoServer

    gateway = docker("network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}").stdout.strip()
    assert gateway, "the Docker bridge has no gateway address"
    server = ThreadedMotoServer(ip_address=gateway, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _s3_client(endpoint: str):
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION,
                                          aws_access_key_id="test", aws_secret_access_key="test")


def run_sdk(python: str, tmp_path, spec: dict, environ: dict | None = None) -> dict:
    """The driver under SDK 1.72.1; returns its RESULT (asserting that it succeeded)."""
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER))
    env = {**clean_environ(), "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": REGION, "PYTHONUNBUFFERED": "1", "HOME": str(tmp_path), **(environ or {})}
    proc = subprocess.run([python, str(driver), json.dumps({"region": REGION, "role": ROLE, **spec})],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, errors="replace",
                          timeout=900, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    (tmp_path / "sdk.log").write_text(output)
    assert proc.returncode == 0, output[-6000:]
    [line] = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    return {**json.loads(line[len("RESULT "):]), "output": output}


def _members(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return sorted(m.name for m in tar.getmembers() if m.isfile())


def test_sdk_local_mode_runs_the_tensorflow_iris_estimator_with_code_in_s3(images, sdk, bridge_s3, tmp_path):
    s3 = _s3_client(bridge_s3)
    s3.create_bucket(Bucket="sdk-local", CreateBucketConfiguration={"LocationConstraint": REGION})
    result = run_sdk(sdk, tmp_path, {
        "job": "tensorflow", "image": images["tensorflow"], "name": "iris-sdk", "s3": bridge_s3,
        "source_dir": IRIS, "code_location": "s3://sdk-local/code", "output_path": "s3://sdk-local/output",
        "inputs": {"training": f"file://{os.path.join(IRIS, 'data')}"}}, {"AWS_ENDPOINT_URL": bridge_s3})
    assert result["status"] == "Completed", result["output"][-4000:]
    hyperparameters = result["hyperparameters"]
    job = json.loads(hyperparameters["sagemaker_job_name"])
    # local_code off: the container fetched the code from S3 and checkpointed there
    assert json.loads(hyperparameters["sagemaker_submit_directory"]) == f"s3://sdk-local/code/{job}/source/sourcedir.tar.gz"
    assert json.loads(hyperparameters["checkpoint_path"]) == f"s3://sdk-local/output/{job}/checkpoints"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="sdk-local", Prefix=f"output/{job}/")["Contents"]]
    assert f"output/{job}/checkpoints/model.ckpt-200.index" in keys, keys
    # SDK 1.72.1's local mode puts it at <output_path>/<job>/model.tar.gz (the platform: .../output/model.tar.gz)
    assert result["model_data"] == f"s3://sdk-local/output/{job}/model.tar.gz"
    members = _members(s3.get_object(Bucket="sdk-local", Key=f"output/{job}/model.tar.gz")["Body"].read())
    exported = [m for m in members if m.startswith("export/Servo/") and m.endswith("/saved_model.pb")]
    assert len(exported) == 1, members
    assert os.path.dirname(exported[0]) + "/variables/variables.index" in members, members


def test_sdk_local_mode_runs_mxnet_mnist_on_two_instances_with_local_code(images, sdk, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "mnist.py").write_bytes(open(MNIST, "rb").read())
    channels = mnist_channels(str(tmp_path / "mnist"), train=600, test=100)
    out = tmp_path / "artifacts"
    out.mkdir()
    result = run_sdk(sdk, tmp_path, {
        "job": "mxnet", "image": images["mxnet"], "name": "mnist-sdk", "source_dir": str(source),
        "output_path": f"file://{out}", "inputs": {name: f"file://{path}" for name, path in channels.items()}})
    assert result["status"] == "Completed", result["output"][-4000:]
    assert json.loads(result["hyperparameters"]["sagemaker_submit_directory"]) == f"file://{source}"
    assert result["model_data"] == f"file://{out}/model.tar.gz"
    with open(out / "model.tar.gz", "rb") as f:
        assert _members(f.read()) == ["model-0000.params", "model-shapes.json", "model-symbol.json"]
    # SDK 1.72.1 names its hosts algo-N-<suffix>: both trained as kvstore workers of one job, the first saved
    output = result["output"]
    found = re.search(r"starting MXNet legacy train\(\): mnist.py, kvstore worker of 2 hosts on algo-1-(\w+)", output)
    assert found, output[-4000:]
    first, second = (f"algo-{n}-{found.group(1)}" for n in (1, 2))
    assert f"starting MXNet legacy train(): mnist.py, kvstore worker of 2 hosts on {second}" in output
    assert f"not saving the model on {second}: in a distributed job only {first} saves" in output
    assert "saving the model with the default save" in output
    # Not checked: that both hosts log their end. The SDK runs docker-compose with
    # --abort-on-container-exit, which stops the other containers once one ends, and the first host
    # (it runs the kvstore scheduler) is the last to end, so it may be stopped in its last moments;
    # its model is saved before the workers' shutdown barrier, so before any host can end. The
    # platform waits for every host; the job's status (compose's exit code: the first host to end)
    # is Completed above.
