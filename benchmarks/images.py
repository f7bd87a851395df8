"""The images: how big they are, and what running the iris job in one costs.

    python benchmarks/images.py [--rounds 3] [--training-steps 1000] [--evaluation-steps 100]

Needs a Docker engine and the CPU images (docker/build.sh all cpu). Measures, in one run:

* each image's size (``docker image inspect``), the four tags docker/build.sh makes (those built);
* the seed's iris job (examples/tensorflow, legacy Estimator, one host) run two ways, interleaved
  round by round:
  - ``docker run IMAGE train`` on a dir from ``sagemaker-training local --prepare-only``;
  - ``sagemaker-training local`` with the same flags, no Docker (host processes);
  for each, the time from the start of the command to the user's first log line (the first line
  of the Estimator that the user's ``estimator_fn`` builds: TensorFlow's ``Using config``) and to
  its exit, as medians over the rounds, and the difference Docker makes (the ``--prepare-only``
  step before ``docker run`` is timed apart: local mode's own times include that preparation).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IRIS = os.path.join(ROOT, "examples", "tensorflow")
TAGS = [f"sagemaker-training-{framework}:{kind}" for framework in ("tensorflow", "mxnet") for kind in ("cpu", "gpu")]
FIRST_USER_LINE = "Using config"  # tf.estimator.Estimator.__init__, called from the user's estimator_fn


def image_sizes() -> dict:
    sizes = {}
    for tag in TAGS:
        proc = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", tag], capture_output=True,
                              text=True, timeout=60)
        sizes[tag] = int(proc.stdout) if proc.returncode == 0 else None
    return sizes


def job_flags(args, work: str, output: str, job_name: str) -> list[str]:
    return ["--framework", "tensorflow", "--entry-point", "iris_dnn_classifier.py", "--source-dir", IRIS,
            "--training-steps", str(args.training_steps), "--evaluation-steps", str(args.evaluation_steps),
            "--channel", f"training={os.path.join(IRIS, 'data')}", "--output-path", output,
            "--job-name", job_name, "--work-dir", work]


def cli_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "SAGEMAKER_", "TF_CONFIG", "DMLC_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    return env


def timed(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """(seconds to the first user line, seconds to exit) of ``argv``; its output merged."""
    started = time.monotonic()
    first = None
    tail = []
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=env, text=True, errors="replace")
    for line in proc.stdout:
        if first is None and FIRST_USER_LINE in line:
            first = time.monotonic() - started
        tail = (tail + [line])[-20:]
    code = proc.wait()
    ended = time.monotonic() - started
    if code != 0 or first is None:
        sys.exit(f"{argv[0]} {argv[1]}: exit {code}, first user line {'seen' if first else 'never seen'}:\n"
                 + "".join(tail))
    return first, ended


def docker_round(args, root: str, n: int) -> tuple[float, float, float]:
    """(first user line, exit) of ``docker run``, and the seconds ``--prepare-only`` took before it."""
    work = os.path.join(root, f"docker-{n}")
    started = time.monotonic()
    prepare = subprocess.run([sys.executable, "-m", "sagemaker_training", "local", *job_flags(
        args, work, os.path.join(root, f"docker-out-{n}"), f"iris-docker-{n}"), "--prepare-only"],
        capture_output=True, text=True, env=cli_env(), timeout=300)
    if prepare.returncode != 0:
        sys.exit(f"--prepare-only failed: {prepare.stderr[-3000:]}")
    prepared = time.monotonic() - started
    base = json.loads(prepare.stdout[prepare.stdout.index("{"):])["Hosts"]["algo-1"]
    try:
        return (*timed(["docker", "run", "--rm", "--network", "none", "--hostname", "algo-1", "-v",
                        f"{base}:/opt/ml", args.image, "train"]), prepared)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def local_round(args, root: str, n: int) -> tuple[float, float]:
    work = os.path.join(root, f"local-{n}")
    try:
        return timed([sys.executable, "-m", "sagemaker_training", "local",
                      *job_flags(args, work, os.path.join(root, f"local-out-{n}"), f"iris-local-{n}")],
                     env=cli_env())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--training-steps", type=int, default=1000)
    parser.add_argument("--evaluation-steps", type=int, default=100)
    parser.add_argument("--image", default="sagemaker-training-tensorflow:cpu")
    args = parser.parse_args(argv)
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        sys.exit("no Docker engine: start dockerd (and build the images: docker/build.sh all cpu)")

    print("image sizes:")
    for tag, size in image_sizes().items():
        print(f"  {tag:40s} {f'{size / 1e6:8.0f} MB' if size else '   (not built)'}")

    results = {"docker run": [], "sagemaker-training local": []}
    root = tempfile.mkdtemp(prefix="images-benchmark-")
    try:
        for n in range(args.rounds):  # interleaved, so that both see the same machine load
            results["docker run"].append(docker_round(args, root, n))
            results["sagemaker-training local"].append(local_round(args, root, n))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"iris job (training_steps={args.training_steps}, evaluation_steps={args.evaluation_steps}), "
          f"median of {args.rounds} rounds:")
    medians = {}
    for name, rounds in results.items():
        first = statistics.median(r[0] for r in rounds)
        ended = statistics.median(r[1] for r in rounds)
        medians[name] = (first, ended)
        print(f"  {name:26s} first user line {first:6.2f}s   exit {ended:6.2f}s")
    (d_first, d_end), (l_first, l_end) = medians["docker run"], medians["sagemaker-training local"]
    print(f"  Docker adds {d_first - l_first:+.2f}s to the first user line and {d_end - l_end:+.2f}s to the exit")
    prepare = statistics.median(r[2] for r in results["docker run"])
    print(f"  (before docker run: --prepare-only took {prepare:.2f}s, not counted above; sagemaker-training local"
          " does the same preparation inside its own times)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
