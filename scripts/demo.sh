#!/usr/bin/env bash
# The README's run command: the seed examples end to end through local mode, with an embedded
# S3 endpoint (moto, in memory, on loopback), the way the seed documents run them:
#
#   1. the TensorFlow iris estimator (examples/tensorflow/iris_dnn_classifier.py),
#      training_steps=1000, evaluation_steps=100, checkpoint_path on S3, channel `training` on S3;
#   2. the MXNet mnist job (examples/mxnet/mnist.py), learning_rate=0.1, channels `train` and
#      `test` on S3, 2 instances training with kvstore dist_sync.
#
# Each job goes the way the SDK's fit() sends it: the data is uploaded to S3 first, the code is
# packed into sourcedir.tar.gz and uploaded to the code location, and the job reads and writes
# only s3:// URIs. The script prints each job's DescribeTrainingJob response and where its
# model.tar.gz is (copied out of the embedded S3 into demo-output/<job>/ before it stops).
#
# Usage: bash scripts/demo.sh [OUTPUT_DIR]       (default: ./demo-output)
#   VENV=/path/to/venv  use (or create) that virtualenv instead of .venv
#   DEMO_JOBS="tensorflow"  run only some of the jobs (tensorflow, mxnet)
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

for job in $jobs; do
  case "$job" in
    tensorflow)
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
    mxnet)
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
    *) echo "demo: unknown job $job (tensorflow, mxnet)" >&2; exit 2 ;;
  esac
done
exit "$status"
