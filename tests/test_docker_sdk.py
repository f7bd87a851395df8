"""The SageMaker Python SDK's own local mode driving the images (pytest marker ``docker``).

SDK 1.72.1 with PyYAML, its local mode's one extra need (a virtualenv of its own, tests/serve_helpers.py's
``sdk_python``), runs unchanged with ``train_instance_type='local'`` and ``image_name=`` one of the
images tests/test_docker.py builds: it writes /opt/ml for every host itself, starts them with
Debian's ``docker-compose`` on its network ``sagemaker-local`` (one fixed name: these tests run one
at a time), and packs every host's /opt/ml/model into ``model.tar.gz``.

The matrix: the seed's TensorFlow iris estimator (legacy mode) and the seed's MXNet mnist (legacy
``train()``), each on one and on two instances, each with ``local_code`` on and off.

* ``local_code`` off: the SDK uploads the code to S3 and the container fetches it; the artifacts
  (and TensorFlow's checkpoints) go to S3. S3 is moto's server on the Docker bridge's address of
  this machine, which the containers reach (the SDK hands the endpoint to them as
  ``S3_ENDPOINT_URL``).
* ``local_code`` on: the code is mounted at /opt/ml/code (``sagemaker_submit_directory`` is
  ``file://<source_dir>``), the artifacts land in a ``file://`` output path, and TensorFlow's
  ``checkpoint_path`` is ``/opt/ml/shared/checkpoints``, a directory all containers share.

The current SDK v2 (``image_uri=``) runs a TensorFlow 2.15 script-mode job the same way. Its config
file opts out of telemetry; every SDK driver here runs with an HTTP(S) proxy that only records, so a
request the SDK (or anything in its process that honours the proxy variables) makes to anywhere but
this machine fails the test. The containers run on Docker's networks and reach only this machine's
moto; the images are present, so Docker pulls nothing.
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
from serve_helpers import ROLE, ROWS_CSV, TF_KERAS_SCRIPT, clean_environ, sdk_python
from test_docker import IRIS, MNIST, build_images, docker

pytestmark = pytest.mark.docker

REGION = "us-west-2"
BUCKET = "sdk-local"

DRIVER = """
    import json, os, sys
    import boto3
    from sagemaker.local import LocalSession
    from sagemaker.mxnet import MXNet
    from sagemaker.tensorflow import TensorFlow

    spec = json.loads(sys.argv[1])
    boto_session = boto3.Session(region_name=spec["region"])
    session = LocalSession(boto_session=boto_session, s3_endpoint_url=spec.get("s3"))
    if spec["local_code"]:
        session.config = {"local": {"local_code": True}}
    common = dict(role=spec["role"], train_instance_type="local", train_instance_count=spec["count"],
                  image_name=spec["image"], sagemaker_session=session, output_path=spec["output_path"],
                  base_job_name=spec["name"], source_dir=spec["source_dir"])
    if spec.get("code_location"):
        common["code_location"] = spec["code_location"]
    if spec["job"] == "tensorflow":
        estimator = TensorFlow(entry_point="iris_dnn_classifier.py", framework_version="1.11", py_version="py2",
                               training_steps=200, evaluation_steps=10, **common)
    else:
        estimator = MXNet(entry_point="mnist.py", framework_version="1.6.0", py_version="py3",
                          hyperparameters={"learning_rate": 0.1, "epochs": 1}, **common)
    estimator.fit(spec["inputs"])
    description = estimator.latest_training_job.describe()
    print("RESULT " + json.dumps({"model_data": estimator.model_data, "status": description["TrainingJobStatus"],
                                  "hyperparameters": estimator.hyperparameters()}))
"""

# the matrix: (job, instances, local_code)
MATRIX = [(job, count, local_code) for job in ("tensorflow", "mxnet") for count in (1, 2) for local_code in (False, True)]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return build_images(tmp_path_factory)


def _compose_leftovers() -> set:
    """Containers docker-compose made (the SDK leaves its stopped ones behind)."""
    listed = docker("ps", "-aq", "--no-trunc", "--filter", "label=com.docker.compose.project").stdout
    return set(listed.split())


@pytest.fixture(scope="module")
def compose_cleanup():
    """The containers and the network the SDKs' local mode leaves are removed after the module."""
    before = _compose_leftovers()
    had_network = docker("network", "inspect", "sagemaker-local", check=False).returncode == 0
    yield
    for container in sorted(_compose_leftovers() - before):
        docker("rm", "-f", container, check=False)
    if not had_network:
        docker("network", "rm", "sagemaker-local", check=False)


@pytest.fixture(scope="module")
def sdk(compose_cleanup):
    """SDK 1.72.1's python."""
    return sdk_python("sdk-v1-local")


@pytest.fixture(scope="module")
def bridge_address():
    """This machine's address on the Docker bridge: the containers reach it, nothing else does."""
    return interface_ipv4(bridge_interface())  # as Docker finds it: the bridge interface's own address


SIOCGIFADDR = 0x8915  # <linux/sockios.h>: an interface's address


def bridge_interface() -> str:
    """The default bridge's network interface, as Docker names it: the network's
    ``com.docker.network.bridge.name`` option, ``docker0`` where it is not set. Its
    ``IPAM.Config`` is not read: Debian's Docker 20.10 leaves the gateway there empty."""
    name = docker("network", "inspect", "bridge", "-f",
                  '{{index .Options "com.docker.network.bridge.name"}}').stdout.strip()
    return "docker0" if name in ("", "<no value>") else name


def interface_ipv4(name: str) -> str:
    """The IPv4 address the kernel has for interface ``name`` (what ``ip -4 addr show NAME`` shows first)."""
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:  # struct ifreq: the name (IFNAMSIZ 16), then a sockaddr_in: family, port, address
            answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError as exc:
            raise AssertionError(f"interface {name!r} has no IPv4 address: {exc.strerror}") from None
    return socket.inet_ntoa(answer[20:24])


def test_interface_ipv4_is_the_kernels_address_of_the_interface():
    assert interface_ipv4("lo") == "127.0.0.1"
    with pytest.raises(AssertionError, match="'no-such-if0' has no IPv4 address"):
        interface_ipv4("no-such-if0")


def test_the_bridge_address_is_the_bridge_interfaces_own(bridge_address):
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", bridge_interface()], capture_output=True,
                           text=True, check=True).stdout.split()
    assert bridge_address == shown[shown.index("inet") + 1].split("/")[0]


@pytest.fixture(scope="module")
def bridge_s3(bridge_address):
    """moto's S3 (and STS) on the Docker bridge's address, with the bucket the jobs use."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=bridge_address, port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    _s3_client(endpoint).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield endpoint
    server.stop()


class OutboundTrap:
    """An HTTP(S) proxy on loopback that answers every request with 403 and records its first line:
    the SDK drivers run with it as HTTP_PROXY / HTTPS_PROXY (this machine's addresses excepted), so
    anything that tries to reach beyond this machine shows up in ``requests``."""

    def __init__(self):
        import socket
        import threading

        self.requests: list[str] = []
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(5)
                try:
                    first = connection.recv(4096).split(b"\r\n", 1)[0]
                    self.requests.append(first.decode("latin-1"))
                    connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def environ(self, *local: str) -> dict:
        no_proxy = ",".join(["localhost", "127.0.0.1", *local])
        return {"HTTP_PROXY": self.url, "HTTPS_PROXY": self.url, "http_proxy": self.url, "https_proxy": self.url,
                "NO_PROXY": no_proxy, "no_proxy": no_proxy}

    def close(self):
        self._socket.close()


@pytest.fixture(scope="module")
def outbound():
    trap = OutboundTrap()
    yield trap
    trap.close()


def _s3_client(endpoint: str):
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION,
                                          aws_access_key_id="test", aws_secret_access_key="test")


def run_sdk(python: str, tmp_path, driver: str, spec: dict, outbound: OutboundTrap, local: tuple = (),
            environ: dict | None = None) -> dict:
    """A driver script under an SDK; returns its RESULT (asserting that it succeeded and that
    nothing tried to leave this machine)."""
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(driver))
    env = {**clean_environ(), "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": REGION, "PYTHONUNBUFFERED": "1", "HOME": str(tmp_path),
           **outbound.environ(*local), **(environ or {})}
    seen = len(outbound.requests)
    proc = subprocess.run([python, str(script), json.dumps({"region": REGION, "role": ROLE, **spec})],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, errors="replace",
                          timeout=900, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    (tmp_path / "sdk.log").write_text(output)
    assert proc.returncode == 0, output[-6000:]
    assert outbound.requests[seen:] == [], "the SDK tried to reach beyond this machine"
    [line] = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    return {**json.loads(line[len("RESULT "):]), "output": output}


def _members(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return sorted(m.name for m in tar.getmembers() if m.isfile())


def _hosts(output: str, pattern: str) -> list[str]:
    """The hosts (algo-N-<suffix>, as the SDK names them) whose lines in docker-compose's log match
    ``pattern``: ``algo-1-abcde_1  | ...`` (SDK 1.72.1) or ``<prefix>-algo-1-abcde | ...`` (SDK v2), colored."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    return sorted(set(re.findall(r"^(?:[a-z0-9]+-)?(algo-\d+-[a-z0-9]+)(?:_\d+)?\s+\|.*" + pattern, plain,
                                 re.MULTILINE)))


@pytest.mark.parametrize("job,count,local_code", MATRIX,
                         ids=[f"{job}-{count}-instance{'s' * (count > 1)}-local_code-{'on' if on else 'off'}"
                              for job, count, on in MATRIX])
def test_sdk_1_local_mode_runs_the_seed_jobs(images, sdk, bridge_s3, bridge_address, outbound, tmp_path,
                                             job, count, local_code):
    s3 = _s3_client(bridge_s3)
    if job == "tensorflow":
        source, inputs = IRIS, {"training": f"file://{os.path.join(IRIS, 'data')}"}
    else:
        source = tmp_path / "source"
        source.mkdir()
        (source / "mnist.py").write_bytes(open(MNIST, "rb").read())
        source = str(source)
        channels = mnist_channels(str(tmp_path / "mnist"), train=600, test=100)
        inputs = {name: f"file://{path}" for name, path in channels.items()}
    name = f"{job[:2]}-{count}-{'on' if local_code else 'off'}"
    spec = {"job": job, "count": count, "local_code": local_code, "image": images[job], "name": name,
            "source_dir": source, "inputs": inputs, "s3": bridge_s3}
    out = tmp_path / "artifacts"
    if local_code:
        out.mkdir()
        spec["output_path"] = f"file://{out}"
    else:
        spec.update(output_path=f"s3://{BUCKET}/{name}/output", code_location=f"s3://{BUCKET}/{name}/code")
    result = run_sdk(sdk, tmp_path, DRIVER, spec, outbound, (bridge_address,), {"AWS_ENDPOINT_URL": bridge_s3})
    output = result["output"]
    assert result["status"] == "Completed", output[-4000:]
    hyperparameters = {k: json.loads(v) for k, v in result["hyperparameters"].items()}
    run = hyperparameters["sagemaker_job_name"]

    # where the code came from, and where the model went
    if local_code:
        assert hyperparameters["sagemaker_submit_directory"] == f"file://{source}"
        assert result["model_data"] == f"file://{out}/model.tar.gz"
        with open(out / "model.tar.gz", "rb") as f:
            members = _members(f.read())
        with open(out / "output.tar.gz", "rb") as f:
            reports = _members(f.read())
    else:
        assert hyperparameters["sagemaker_submit_directory"] == f"s3://{BUCKET}/{name}/code/{run}/source/sourcedir.tar.gz"
        # SDK 1.72.1's local mode puts it at <output_path>/<job>/model.tar.gz (the platform: .../output/model.tar.gz)
        assert result["model_data"] == f"s3://{BUCKET}/{name}/output/{run}/model.tar.gz"
        members = _members(s3.get_object(Bucket=BUCKET, Key=f"{name}/output/{run}/model.tar.gz")["Body"].read())
        reports = _members(s3.get_object(Bucket=BUCKET, Key=f"{name}/output/{run}/output.tar.gz")["Body"].read())

    hosts = _hosts(output, r"starting (?:legacy TensorFlow|MXNet legacy train\(\)): .* on algo-")
    assert len(hosts) == count, output[-4000:]
    # every host's output/ copied into one output.tar.gz: no host wrote a failure (docker-compose stops
    # the other containers once one has ended; a host that had finished its work still reports success;
    # that each host ran to its end is what the role lines above show)
    assert reports == ["success"], reports
    if job == "tensorflow":
        # one SavedModel, the master's; checkpoints where the SDK said
        exported = [m for m in members if m.startswith("export/Servo/") and m.endswith("/saved_model.pb")]
        assert len(exported) == 1, members
        assert os.path.dirname(exported[0]) + "/variables/variables.index" in members, members
        checkpoints = "/opt/ml/shared/checkpoints" if local_code else f"s3://{BUCKET}/{name}/output/{run}/checkpoints"
        assert hyperparameters["checkpoint_path"] == checkpoints
        if count == 1:
            roles = {hosts[0]: "a single task"}
        else:
            roles = {hosts[0]: "master 0", hosts[1]: "worker 0"}
        for host, role in roles.items():
            line = f"training iris_dnn_classifier.py as {role}: training_steps=200 evaluation_steps=10 checkpoints in "
            assert _hosts(output, re.escape(line + checkpoints)) == [host], output[-4000:]
        if not local_code:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{name}/output/{run}/")["Contents"]]
            assert f"{name}/output/{run}/checkpoints/model.ckpt-200.index" in keys, keys
    else:
        assert members == ["model-0000.params", "model-shapes.json", "model-symbol.json"]
        if count == 1:
            assert _hosts(output, re.escape(f"starting MXNet legacy train(): mnist.py on {hosts[0]}")) == hosts
        else:
            # both trained as kvstore workers of one job; only the first saved
            first, second = hosts
            line = "starting MXNet legacy train(): mnist.py, kvstore worker of 2 hosts on "
            assert _hosts(output, re.escape(line + first)) == [first], output[-4000:]
            assert _hosts(output, re.escape(line + second)) == [second], output[-4000:]
            assert _hosts(output, re.escape(f"not saving the model on {second}: in a distributed job only {first} "
                                            "saves")) == [second]
        assert _hosts(output, re.escape("saving the model with the default save")) == [hosts[0]], output[-4000:]
        # Not checked: that every host logs its end. The SDK runs docker-compose with
        # --abort-on-container-exit, which stops the other containers once one ends; the first host
        # (it runs the kvstore scheduler) may be stopped in its last moments, after its save.


# --- the current SDK v2 -------------------------------------------------------------------------

V2_DRIVER = """
    import json, sys
    from sagemaker.local import LocalSession
    from sagemaker.tensorflow import TensorFlow

    spec = json.loads(sys.argv[1])
    session = LocalSession()  # local_code from ~/.sagemaker/config.yaml
    estimator = TensorFlow(entry_point="train.py", source_dir=spec["source_dir"], role=spec["role"],
                           instance_count=1, instance_type="local", image_uri=spec["image"],
                           framework_version="2.15", py_version="py310", hyperparameters={"epochs": 3},
                           output_path=spec["output_path"], sagemaker_session=session)
    estimator.fit({"training": spec["training"]})
    description = estimator.latest_training_job.describe()
    print("RESULT " + json.dumps({"model_data": estimator.model_data, "status": description["TrainingJobStatus"],
                                  "hyperparameters": estimator.hyperparameters()}))
"""

# ~/.config/sagemaker/config.yaml (the SDK defaults): no telemetry request after fit()
V2_DEFAULTS = "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n"
# ~/.sagemaker/config.yaml (local mode): the code mounted, not uploaded
V2_LOCAL = "local:\n  local_code: true\n"


@pytest.fixture(scope="module")
def sdk_v2(compose_cleanup):
    return sdk_python("sdk-v2")


def test_sdk_2_local_mode_runs_a_tensorflow_2_15_script_mode_job(images, sdk_v2, outbound, tmp_path):
    home = tmp_path / "home"
    (home / ".config" / "sagemaker").mkdir(parents=True)
    (home / ".config" / "sagemaker" / "config.yaml").write_text(V2_DEFAULTS)
    (home / ".sagemaker").mkdir()
    (home / ".sagemaker" / "config.yaml").write_text(V2_LOCAL)
    source, data, out = tmp_path / "source", tmp_path / "data", tmp_path / "artifacts"
    for folder in (source, data, out):
        folder.mkdir()
    (source / "train.py").write_text(textwrap.dedent(TF_KERAS_SCRIPT))
    (data / "rows.csv").write_text(ROWS_CSV)
    result = run_sdk(sdk_v2, tmp_path, V2_DRIVER, {
        "image": images["tensorflow"], "source_dir": str(source), "training": f"file://{data}",
        "output_path": f"file://{out}"}, outbound, environ={"HOME": str(home), "SAGEMAKER_SUPPRESS_V2_WARNING": "1"})
    output = result["output"]
    assert result["status"] == "Completed", output[-4000:]
    hyperparameters = {k: json.loads(v) for k, v in result["hyperparameters"].items()}
    assert hyperparameters["sagemaker_submit_directory"] == f"file://{source}"
    assert hyperparameters["model_dir"] == "/opt/ml/shared/model"
    [host] = _hosts(output, r"model_dir /opt/ml/shared/model; tensorflow 2\.15\.1$")
    assert host.startswith("algo-1-"), output[-4000:]
    assert _hosts(output, r"epoch 2 loss=\d") == [host], output[-4000:]
    assert result["model_data"] == f"file://{out}/model.tar.gz"
    with open(out / "model.tar.gz", "rb") as f:
        members = _members(f.read())
    assert "1/saved_model.pb" in members and "1/variables/variables.index" in members, members
    with open(out / "output.tar.gz", "rb") as f:
        assert _members(f.read()) == ["success"]
