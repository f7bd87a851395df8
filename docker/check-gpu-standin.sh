#!/usr/bin/env bash
# What a machine with no CUDA base image and no GPU can check of the GPU image: Dockerfile.gpu
# built on a stand-in for the nvidia/cuda base (Ubuntu 22.04 minbase, debootstrap'ed from Ubuntu's
# archive: the base's OS and nothing of CUDA), then the seed iris job run in it on the CPU, and the
# image's Python, TensorFlow build and MPI tools printed. It says nothing about CUDA, cuDNN or a GPU.
#
#   docker/check-gpu-standin.sh       # needs root, debootstrap, Docker, and archive.ubuntu.com
#
# Tags: standin-check/ubuntu:22.04 (the stand-in base, kept for the next run) and
# standin-check/sagemaker-training-tensorflow:gpu. UBUNTU_MIRROR overrides the archive.
set -euo pipefail
cd "$(dirname "$0")/.."

standin=standin-check/ubuntu:22.04
mirror="${UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}"
image=standin-check/sagemaker-training-tensorflow:gpu
scratch=$(mktemp -d "${TMPDIR:-/tmp}/gpu-standin.XXXXXX")
# shellcheck disable=SC2329 # run by the EXIT trap
cleanup() { rm -rf --one-file-system "$scratch"; }
trap cleanup EXIT

if ! docker image inspect "$standin" >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "$0: debootstrap needs root" >&2; exit 1; }
  command -v debootstrap >/dev/null || { echo "$0: apt-get install debootstrap" >&2; exit 1; }
  echo "== debootstrap jammy (minbase) from $mirror" >&2
  debootstrap --variant=minbase --components=main,universe jammy "$scratch/rootfs" "$mirror" >&2
  # The suites the real ubuntu:22.04 image has; python3.11 is in universe.
  printf 'deb %s %s main universe\n' "$mirror" jammy "$mirror" jammy-updates "$mirror" jammy-security \
    > "$scratch/rootfs/etc/apt/sources.list"
  rm -rf "$scratch"/rootfs/var/lib/apt/lists/* "$scratch"/rootfs/var/cache/apt/archives/*.deb
  tar -C "$scratch/rootfs" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "stand-in for an nvidia/cuda ubuntu22.04 base, without CUDA (docker/check-gpu-standin.sh)" \
    - "$standin" >/dev/null
  rm -rf --one-file-system "$scratch/rootfs"
fi

echo "== Dockerfile.gpu on $standin" >&2
CUDA_IMAGE="$standin" REPOSITORY_PREFIX=standin-check/ docker/build.sh tensorflow gpu >&2

echo "== the image's tools" >&2
docker run --rm --network none --entrypoint bash "$image" -c \
  'python3 --version; command -v mpirun sshd ssh; python3 -c "import tensorflow as tf, mpi4py.MPI as m; print(\"tensorflow\", tf.__version__, \"built with CUDA:\", tf.test.is_built_with_cuda()); print(m.Get_library_version().split(\",\")[0])"'

echo "== the seed iris job (100 steps) on the CPU" >&2
venv=$(scripts/setup-venv.sh | tail -n 1)
"$venv/bin/sagemaker-training" local --framework tensorflow --entry-point iris_dnn_classifier.py \
  --source-dir examples/tensorflow --channel "training=$PWD/examples/tensorflow/data" \
  --training-steps 100 --evaluation-steps 10 --job-name gpu-standin-iris \
  --output-path "$scratch/out" --work-dir "$scratch/work" --prepare-only >/dev/null
docker run --rm --network none --hostname algo-1 -v "$scratch/work/algo-1:/opt/ml" "$image" train >&2
ls "$scratch"/work/algo-1/model/export/Servo/*/saved_model.pb >/dev/null
echo "check-gpu-standin: $image built on $standin; the iris job exported its SavedModel" \
  "($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.2f GB", $1 / 1e9}'))"
