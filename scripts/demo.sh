#!/usr/bin/env bash
# The README's run command: what the seeds show, through `sagemaker-training serve`.
#
#   1. starts `sagemaker-training serve` (its state, and the embedded S3's objects, in
#      OUTPUT_DIR/serve-state) with the buckets the seeds use;
#   2. makes the "notebook" virtualenv holding the SageMaker Python SDK 1.72.1, the seeds' SDK
#      (~/.cache/sagemaker-training-tests/sdk-v1, shared with the tests);
#   3. uploads the iris and mnist data where the seeds read them
#      (s3://sagemaker-sample-data-us-west-2/tensorflow/iris, .../mxnet/mnist/{train,test});
#   4. runs the seeds' cells verbatim (examples/notebooks/tensorflow_iris.py, mxnet_mnist.py):
#      fit() with wait=True, logs=True, the SDK talking to serve through AWS_ENDPOINT_URL;
#   5. prints each job's DescribeTrainingJob and its model.tar.gz (copied to OUTPUT_DIR/<job>/).
#
# The same jobs through local mode's flags form (`sagemaker-training local --embedded-s3`, the
# MXNet one on 2 instances with dist_sync) run with DEMO_JOBS="local-tensorflow local-mxnet".
#
# Usage: bash scripts/demo.sh [OUTPUT_DIR]       (default: ./demo-output)
#   VENV=/path/to/venv  use (or create) that virtualenv instead of .venv
#   DEMO_JOBS="tensorflow"  run only some of the jobs (tensorflow, mxnet: the notebook cells;
#                           local-tensorflow, local-mxnet: local mode's flags form)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=$(scripts/setup-venv.sh | tail -n 1)
cli="$venv/bin/sagemaker-training"
out="$(mkdir -p "${1:-demo-output}" && cd "${1:-demo-output}" && pwd)"
jobs="${DEMO_JOBS:-tensorflow mxnet}"
stamp=$(date -u +%Y-%m-%d-%H-%M-%S)
bucket="sagemaker-us-west-2-000000000000"
status=0

summary() {  # the description's key facts, and where the model is
  "$venv/bin/python" - "$1" "$2" <<'PY'
import json, os, sys
text = open(sys.argv[1]).read()
if not text.strip():
    sys.exit("  (no description: the job did not start; see the message above)")
description = json.loads(text)
local = os.path.join(sys.argv[2], description["TrainingJobName"], "model.tar.gz")
print(f"  job:      {description['TrainingJobName']}  {description['TrainingJobStatus']}"
      f" ({description['SecondaryStatus']}) in {description.get('TrainingTimeInSeconds', '?')}s")
if "FailureReason" in description:
    print(f"  failure:  {description['FailureReason'].splitlines()[0]}")
if "ModelArtifacts" in description:
    print(f"  model:    {description['ModelArtifacts']['S3ModelArtifacts']}")
    print(f"  copied to {local}" if os.path.exists(local) else "  (not copied)")
PY
}

run_job() {  # NAME ARGS...: one job; its description in $out/NAME.json, printed
  local name="$1"; shift
  echo "=== $name" >&2
  local started=$SECONDS rc=0
  "$cli" local --embedded-s3 --region us-west-2 --download-artifacts "$out" "$@" > "$out/$name.json" || rc=$?
  echo "--- $name: DescribeTrainingJob (${out}/$name.json, $((SECONDS - started))s wall)"
  cat "$out/$name.json"
  summary "$out/$name.json" "$out"
  [ "$rc" = 0 ] || status=$rc
}

serve_pid=""
stop_serve() { [ -z "$serve_pid" ] || { kill -TERM "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null || true; }; }
trap stop_serve EXIT

start_serve() {  # serve in the background, its exports in this shell, the notebook venv, the data
  [ -z "$serve_pid" ] || return 0
  echo "=== sagemaker-training serve (state in $out/serve-state)" >&2
  mkdir -p "$out/serve-state"
  rm -f "$out/serve.out"
  "$cli" serve --state-dir "$out/serve-state" --region us-west-2 --max-running 1 \
    --bucket sagemaker-sample-data-us-west-2 --bucket sagemaker-notebooks \
    > "$out/serve.out" 2> "$out/serve.log" &
  serve_pid=$!
  for _ in $(seq 1 600); do
    grep -q '^ready ' "$out/serve.out" 2>/dev/null && break
    kill -0 "$serve_pid" 2>/dev/null || { cat "$out/serve.log" >&2; echo "demo: serve did not start" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '^ready ' "$out/serve.out" || { echo "demo: serve did not print ready" >&2; exit 1; }
  sed 's/^\(export AWS_SECRET_ACCESS_KEY=\).*/\1**** (in serve.out)/' "$out/serve.out"  # never echo the key
  eval "$(grep '^export ' "$out/serve.out")"  # the server's key pair: every request is signed with it
  echo "=== the notebook virtualenv (SageMaker Python SDK 1.72.1)" >&2
  notebook_python=$(PYTHONPATH=tests "$venv/bin/python" -c 'from serve_helpers import sdk_python; print(sdk_python("sdk-v1"))')
  "$venv/bin/python" examples/notebooks/upload_data.py
}

run_cell() {  # NOTEBOOK EXAMPLE_DIR: the seed's cells, verbatim, then the job's description
  local notebook="$1" dir="$2" started=$SECONDS rc=0 log
  start_serve
  echo "=== $notebook (cwd $dir)" >&2
  log="$out/$(basename "$notebook" .py).log"
  (cd "$dir" && "$notebook_python" "$OLDPWD/examples/notebooks/$notebook") 2>&1 | tee "$log" || rc=$?
  local job
  job=$(sed -n 's/^job_name: //p' "$log" | tail -n 1)
  echo "--- $notebook: $((SECONDS - started))s wall" >&2
  if [ -z "$job" ]; then
    echo "demo: $notebook did not finish a job (see $log)" >&2
    status=1
    return
  fi
  "$venv/bin/python" examples/notebooks/show_job.py "$job" "$out" || rc=$?
  [ "$rc" = 0 ] || status=$rc
}

for job in $jobs; do
  case "$job" in
    tensorflow)
      # the seed: TensorFlow(entry_point='iris_dnn_classifier.py', ..., training_steps=1000,
      #                      evaluation_steps=100).fit('s3://sagemaker-sample-data-us-west-2/tensorflow/iris')
      run_cell tensorflow_iris.py examples/tensorflow
      ;;
    mxnet)
      # the seed: MXNet(entry_point='mnist.py', ..., hyperparameters={'learning_rate': 0.1})
      #           .fit({'train': ..., 'test': ...})
      run_cell mxnet_mnist.py examples/mxnet
      ;;
    local-tensorflow)
      # TensorFlow(entry_point='iris_dnn_classifier.py', training_steps=1000, evaluation_steps=100,
      #            checkpoint_path=..., train_instance_count=1, train_instance_type='ml.c4.xlarge')
      # .fit(train_data_location)
      run_job iris-dnn-classifier \
        --upload-data "examples/tensorflow/data=s3://$bucket/data/iris" \
        --framework tensorflow --entry-point examples/tensorflow/iris_dnn_classifier.py \
        --training-steps 1000 --evaluation-steps 100 \
        --checkpoint-path "s3://$bucket/checkpoints/iris-dnn-classifier-$stamp" \
        --channel "training=s3://$bucket/data/iris" \
        --instance-count 1 --instance-type ml.c4.xlarge \
        --output-path "s3://$bucket/output" --code-location "s3://$bucket/code" \
        --job-name "iris-dnn-classifier-$stamp"
      ;;
    local-mxnet)
      # MXNet('mnist.py', train_instance_count=2, train_instance_type='ml.c4.xlarge',
      #       hyperparameters={'learning_rate': 0.1}).fit({'train': ..., 'test': ...})
      run_job mnist \
        --upload-data "examples/mxnet/data=s3://$bucket/data/mnist/train" \
        --upload-data "examples/mxnet/data=s3://$bucket/data/mnist/test" \
        --framework mxnet --entry-point examples/mxnet/mnist.py \
        --hyperparameter learning_rate=0.1 \
        --channel "train=s3://$bucket/data/mnist/train" --channel "test=s3://$bucket/data/mnist/test" \
        --instance-count 2 --instance-type ml.c4.xlarge \
        --output-path "s3://$bucket/output" --code-location "s3://$bucket/code" \
        --job-name "mnist-$stamp"
      ;;
    *) echo "demo: unknown job $job (tensorflow, mxnet, local-tensorflow, local-mxnet)" >&2; exit 2 ;;
  esac
done
exit "$status"
