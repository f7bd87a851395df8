#!/usr/bin/env bash
# Run a training image against host dirs prepared by `sagemaker-training local --prepare-only`,
# one container per host, as the platform runs them: each host's dir mounted on /opt/ml,
# `docker run IMAGE train`, every host reachable by its name (algo-1, algo-2, ...).
#
#   sagemaker-training local --request job.json --prepare-only --work-dir /tmp/job
#   docker/run-local.sh sagemaker-training-tensorflow:cpu /tmp/job
#
# Every container also gets WORK_DIR/shared on /opt/ml/shared, one volume all hosts share, as the
# SDK's local mode gives them: a TensorFlow parameter-server job needs its checkpoint_path
# (here /opt/ml/shared/checkpoints, or s3://) on storage every host sees, because each parameter
# server writes its own shard of a checkpoint.
#
# Options (before IMAGE):
#   --network host     share the machine's network: host names via --add-host, ports shifted
#                      per host (SAGEMAKER_PORT_STRIDE) so that the hosts' servers do not collide
#                      (default: a user network of its own, where algo-N is a network alias)
#   --max-run SECONDS  stop every container after SECONDS (docker stop: SIGTERM, grace, SIGKILL)
#   --grace SECONDS    docker stop's grace (default 120, as the platform gives)
# Extra `docker run` arguments (e.g. --gpus all) go in DOCKER_RUN_ARGS. AWS_* variables of this
# shell are passed on, so that S3 URIs in the job reach the same endpoint.
# Exit code: 0 when every host succeeded, else the first failing host's exit code.
set -euo pipefail

network_mode=user
max_run=""
grace=120
while [ $# -gt 0 ]; do
  case "$1" in
    --network) [ "${2:-}" = host ] || { echo "$0: only '--network host' is an option" >&2; exit 2; }
               network_mode=host; shift 2 ;;
    --max-run) max_run="$2"; shift 2 ;;
    --grace) grace="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) echo "$0: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -eq 2 ] || { echo "usage: $0 [--network host] [--max-run SECONDS] [--grace SECONDS] IMAGE WORK_DIR" >&2; exit 2; }
image="$1"
work_dir="$(cd "$2" && pwd)"
command -v docker >/dev/null || { echo "$0: docker is not installed" >&2; exit 1; }

mapfile -t hosts < <(find "$work_dir" -mindepth 1 -maxdepth 1 -type d -name 'algo-*' -printf '%f\n' | sort -t- -k2 -n)
[ "${#hosts[@]}" -gt 0 ] || { echo "$0: no algo-* host dirs in $work_dir (run sagemaker-training local --prepare-only)" >&2; exit 2; }
for host in "${hosts[@]}"; do
  [ -f "$work_dir/$host/input/config/resourceconfig.json" ] || { echo "$0: $work_dir/$host has no input/config" >&2; exit 2; }
done

mkdir -p "$work_dir/shared"
run_id="sagemaker-local-$$"
network="$run_id"
containers=()
log_pids=()

# shellcheck disable=SC2329 # run by the EXIT trap
cleanup() {
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  for p in "${log_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$network_mode" = user ]; then docker network rm "$network" >/dev/null 2>&1 || true; fi
}
stop_all() {
  local stops=()
  for c in "${containers[@]}"; do
    docker stop --time "$grace" "$c" >/dev/null 2>&1 &
    stops+=($!)
  done
  for p in "${stops[@]}"; do wait "$p" || true; done
}
trap cleanup EXIT
trap 'echo "run-local: stopping the hosts" >&2; stop_all; exit 130' INT TERM

net_args=()
env_args=()
if [ "$network_mode" = user ]; then
  docker network create "$network" >/dev/null
else
  for host in "${hosts[@]}"; do net_args+=(--add-host "$host:127.0.0.1"); done
  env_args+=(-e SAGEMAKER_PORT_STRIDE=3)
fi
while IFS= read -r name; do env_args+=(-e "$name"); done < <(env | sed -n 's/^\(AWS_[A-Z0-9_]*\)=.*/\1/p')

for host in "${hosts[@]}"; do
  name="$run_id-$host"
  if [ "$network_mode" = user ]; then
    host_net=(--network "$network" --network-alias "$host" --hostname "$host")
  else
    host_net=(--network host "${net_args[@]}")
  fi
  # shellcheck disable=SC2086 # DOCKER_RUN_ARGS is a list of words on purpose
  docker run -d --name "$name" "${host_net[@]}" "${env_args[@]}" \
    -v "$work_dir/$host:/opt/ml" -v "$work_dir/shared:/opt/ml/shared" ${DOCKER_RUN_ARGS:-} "$image" train >/dev/null
  containers+=("$name")
  docker logs -f "$name" 2>&1 | sed -u "s/^/[$host] /" >&2 &
  log_pids+=($!)
done

started=$(date +%s)
status=0
remaining=("${containers[@]}")
while [ "${#remaining[@]}" -gt 0 ]; do
  still=()
  for c in "${remaining[@]}"; do
    if [ "$(docker inspect -f '{{.State.Running}}' "$c")" = true ]; then
      still+=("$c")
      continue
    fi
    code=$(docker inspect -f '{{.State.ExitCode}}' "$c")
    if [ "$code" != 0 ] && [ "$status" = 0 ]; then
      status=$code
      echo "run-local: ${c#"$run_id"-} exited with $code; stopping the other hosts" >&2
      stop_all
    fi
  done
  remaining=("${still[@]+"${still[@]}"}")
  if [ -n "$max_run" ] && [ $(( $(date +%s) - started )) -ge "$max_run" ] && [ "${#remaining[@]}" -gt 0 ]; then
    echo "run-local: MaxRuntimeInSeconds ($max_run) exceeded; stopping every host" >&2
    stop_all
    [ "$status" = 0 ] && status=124
  fi
  [ "${#remaining[@]}" -gt 0 ] && sleep 1
done
for p in "${log_pids[@]}"; do wait "$p" 2>/dev/null || true; done

first="$work_dir/${hosts[0]}"
if [ "$status" = 0 ]; then
  echo "run-local: every host succeeded; the model is in $first/model, extra output in $first/output/data" >&2
else
  echo "run-local: the job failed; see $first/output/failure (and the other hosts' output/failure)" >&2
fi
exit "$status"
