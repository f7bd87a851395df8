#!/usr/bin/env bash
# Build the framework training images from this repository.
#
#   docker/build.sh                     # all four: {tensorflow,mxnet} x {cpu,gpu}
#   docker/build.sh tensorflow cpu      # one framework and/or one kind
#   REPOSITORY_PREFIX=123456789012.dkr.ecr.us-west-2.amazonaws.com/ docker/build.sh
#
# Tags: ${REPOSITORY_PREFIX}sagemaker-training-<framework>:<kind> and :<kind>-<version>
# (the version of pyproject.toml). The image URIs contain the framework's name, so
# `sagemaker-training local` picks the runner from AlgorithmSpecification.TrainingImage.
set -euo pipefail
cd "$(dirname "$0")/.."

frameworks=(tensorflow mxnet)
kinds=(cpu gpu)
case "${1:-all}" in
  all) ;;
  tensorflow|mxnet) frameworks=("$1") ;;
  *) echo "usage: $0 [tensorflow|mxnet|all] [cpu|gpu|all]" >&2; exit 2 ;;
esac
case "${2:-all}" in
  all) ;;
  cpu|gpu) kinds=("$2") ;;
  *) echo "usage: $0 [tensorflow|mxnet|all] [cpu|gpu|all]" >&2; exit 2 ;;
esac

command -v docker >/dev/null || { echo "$0: docker is not installed" >&2; exit 1; }
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -n 1)
prefix="${REPOSITORY_PREFIX:-}"

# The CUDA runtime each framework's GPU wheel is built for (see Dockerfile.gpu).
cuda_image() {
  case "$1" in
    tensorflow) echo "nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04" ;;
    mxnet) echo "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04" ;;
  esac
}

for framework in "${frameworks[@]}"; do
  for kind in "${kinds[@]}"; do
    name="${prefix}sagemaker-training-${framework}"
    args=(--file "Dockerfile.${kind}" --build-arg "FRAMEWORK=${framework}"
          --tag "${name}:${kind}" --tag "${name}:${kind}-${version}")
    if [ "$kind" = gpu ]; then
      args+=(--build-arg "CUDA_IMAGE=$(cuda_image "$framework")")
    fi
    echo "== building ${name}:${kind}" >&2
    # shellcheck disable=SC2086 # DOCKER_BUILD_ARGS is a list of words on purpose
    docker build "${args[@]}" ${DOCKER_BUILD_ARGS:-} .
  done
done
