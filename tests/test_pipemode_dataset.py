"""``sagemaker_tensorflow.PipeModeDataset`` on real FIFOs fed by local mode's own feeder
(local/pipes.py), and a legacy TensorFlow module reading Pipe-mode channels through local mode."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from local_jobs import explain, request, run_local, write_request
from sagemaker_training.local.pipes import Feed
from sagemaker_training.storage import transfer

tf = pytest.importorskip("tensorflow")
from sagemaker_tensorflow import PipeModeDataset, PipeModeDatasetException  # noqa: E402

MAGIC = (0xCED7230A).to_bytes(4, "little")


@pytest.fixture
def job(tmp_path):
    """A host's base dir with ``channels`` (name -> input mode) in inputdataconfig.json, and
    ``feed(channel, files, recordio=False)`` feeding that channel's FIFOs from files until the test ends."""
    base = tmp_path / "base"
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "data").mkdir(parents=True)
    feeds = []

    class Job:
        dirs = dict(state_dir=str(base / "pipe_state"), pipe_dir=str(base / "input" / "data"),
                    config_dir=str(base / "input" / "config"))

        @staticmethod
        def channels(modes: dict):
            config = {name: {"TrainingInputMode": mode, "S3DistributionType": "FullyReplicated",
                             "RecordWrapperType": "None"} for name, mode in modes.items()}
            (base / "input" / "config" / "inputdataconfig.json").write_text(json.dumps(config))

        @staticmethod
        def feed(channel: str, files: dict, recordio: bool = False):
            folder = tmp_path / f"objects-{channel}"
            folder.mkdir()
            for name, data in files.items():
                (folder / name).write_bytes(data)
            feed = Feed(str(base / "input" / "data"), channel, transfer.list_files(str(folder)),
                        transfer.read_chunks, recordio_wrap=recordio)
            feed.prepare()
            feed.start()
            feeds.append(feed)

    yield Job
    for feed in feeds:
        feed.stop()


def _tfrecords(tmp_path, records) -> bytes:
    path = str(tmp_path / "x.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    with open(path, "rb") as f:
        return f.read()


def _read(dataset) -> list:
    return [bytes(x) for x in dataset.as_numpy_iterator()]


def test_each_iteration_reads_the_next_epoch_in_every_format(tmp_path, job):
    job.channels({"tfr": "Pipe", "rio": "Pipe", "text": "Pipe"})
    tf_records = [b"one", b"", b"three" * 100]
    job.feed("tfr", {"a.tfrecord": _tfrecords(tmp_path, tf_records[:2]),
                     "b.tfrecord": _tfrecords(tmp_path, tf_records[2:])})
    objects = {"a": b"plain", "b": b"ab" + MAGIC + b"cd" + MAGIC, "c": b""}
    job.feed("rio", objects, recordio=True)
    job.feed("text", {"a.txt": b"line 1\n\nline 3\nno newline at the end"})

    dataset = PipeModeDataset("tfr", record_format="TFRecord", **job.dirs)
    assert isinstance(dataset, tf.data.Dataset)
    assert _read(dataset.repeat(2)) == tf_records * 2  # epochs 0 and 1
    # a new dataset object goes on from the counter in state_dir: epoch 2
    assert _read(PipeModeDataset("tfr", record_format="TFRecord", **job.dirs)) == tf_records
    assert sorted(os.listdir(job.dirs["pipe_dir"]))[-1] == "tfr_3"

    assert _read(PipeModeDataset("rio", **job.dirs)) == list(objects.values())  # RecordIO is the default
    assert _read(PipeModeDataset("text", record_format="TextLine", **job.dirs)) == [
        b"line 1", b"", b"line 3", b"no newline at the end"]


def test_stopping_early_then_the_next_epoch_is_whole(tmp_path, job):
    job.channels({"training": "Pipe"})
    records = [os.urandom(1000) for _ in range(300)]  # more than a FIFO holds
    job.feed("training", {"a.tfrecord": _tfrecords(tmp_path, records)})
    dataset = PipeModeDataset("training", record_format="TFRecord", **job.dirs)
    assert _read(dataset.take(3)) == records[:3]
    assert _read(dataset) == records


def test_tf1_graph_mode_one_shot_iterator(tmp_path, job):
    job.channels({"training": "Pipe"})
    job.feed("training", {"a.tfrecord": _tfrecords(tmp_path, [b"x", b"y"])})
    with tf.Graph().as_default():
        dataset = PipeModeDataset("training", record_format="TFRecord", **job.dirs)
        following = dataset.make_one_shot_iterator().get_next()
        with tf.compat.v1.Session() as session:
            assert [session.run(following), session.run(following)] == [b"x", b"y"]
            with pytest.raises(tf.errors.OutOfRangeError):
                session.run(following)


def test_the_originals_checks_and_messages(tmp_path, job):
    job.channels({"training": "File", "piped": "Pipe"})
    with pytest.raises(PipeModeDatasetException, match="^Channel missing not found in Training Job InputDataConfig$"):
        PipeModeDataset("missing", **job.dirs)
    with pytest.raises(PipeModeDatasetException, match="^Channel training is not a PipeMode channel$"):
        PipeModeDataset("training", **job.dirs)
    with pytest.raises(PipeModeDatasetException, match="^Invalid record format: CSV"):
        PipeModeDataset("piped", record_format="CSV", **job.dirs)
    with pytest.raises(PipeModeDatasetException,
                       match="^max_corrupted_records_to_skip can only be set for record_format='TFRecord'$"):
        PipeModeDataset("piped", max_corrupted_records_to_skip=1, **job.dirs)


def test_crc_checks_and_skipping_corrupted_records(tmp_path, job):
    job.channels({"bad": "Pipe"})
    good = _tfrecords(tmp_path, [b"aaaa", b"bbbb", b"cccc"])
    corrupted = good[:12] + b"XXXX" + good[16:]  # the first record's data no longer matches its CRC
    job.feed("bad", {"x.tfrecord": corrupted})
    with pytest.raises(tf.errors.OpError, match="CRC check on data failed"):
        _read(PipeModeDataset("bad", record_format="TFRecord", **job.dirs))
    assert _read(PipeModeDataset("bad", record_format="TFRecord", max_corrupted_records_to_skip=1,
                                 **job.dirs)) == [b"bbbb", b"cccc"]


def test_defaults_follow_sagemaker_base_dir(tmp_path, job, monkeypatch):
    job.channels({"training": "Pipe"})
    job.feed("training", {"a.txt": b"hello\n"})
    monkeypatch.setenv("SAGEMAKER_BASE_DIR", str(tmp_path / "base"))
    assert _read(PipeModeDataset("training", record_format="TextLine")) == [b"hello"]
    assert os.path.exists(tmp_path / "base" / "pipe_state" / ".training-pipe_mode-state")


# -- the 2018 pipe-mode example's style through local mode ------------------------------------------

LEGACY_MODULE = """
    import tensorflow as tf
    from sagemaker_tensorflow import PipeModeDataset

    DIMENSION = 4

    def estimator_fn(run_config, params):
        column = tf.feature_column.numeric_column('data', shape=(DIMENSION, ))
        return tf.estimator.LinearClassifier(feature_columns=[column], config=run_config)

    def train_input_fn(training_dir, params):
        return _input_fn('train')

    def eval_input_fn(training_dir, params):
        return _input_fn('eval')

    def _input_fn(channel):
        features = {
            'data': tf.FixedLenFeature([], tf.string),
            'labels': tf.FixedLenFeature([], tf.int64),
        }

        def parse(record):
            parsed = tf.parse_single_example(record, features)
            return ({'data': tf.decode_raw(parsed['data'], tf.float64)}, parsed['labels'])

        ds = PipeModeDataset(channel, record_format='TFRecord')
        ds = ds.repeat(2)
        ds = ds.prefetch(10)
        ds = ds.map(parse, num_parallel_calls=2)
        ds = ds.batch(8)
        return ds

    def serving_input_fn(params):
        inputs = {'data': tf.placeholder(tf.float64, [None, DIMENSION])}
        return tf.estimator.export.ServingInputReceiver(inputs, inputs)
"""


def _examples(tmp_path, name: str, count: int) -> bytes:
    import numpy as np

    path = str(tmp_path / name)
    with tf.io.TFRecordWriter(path) as writer:
        for i in range(count):
            data = np.full(4, float(i % 2), dtype=np.float64).tobytes()
            example = tf.train.Example(features=tf.train.Features(feature={
                "data": tf.train.Feature(bytes_list=tf.train.BytesList(value=[data])),
                "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=[i % 2]))}))
            writer.write(example.SerializeToString())
    with open(path, "rb") as f:
        return f.read()


def test_legacy_estimator_fn_module_reads_pipe_channels_and_exports(tmp_path, s3, s3_bucket):
    bucket = s3_bucket("pipe-legacy")
    s3.put_object(Bucket=bucket, Key="train/part-0.tfrecord", Body=_examples(tmp_path, "t0", 40))
    s3.put_object(Bucket=bucket, Key="train/part-1.tfrecord", Body=_examples(tmp_path, "t1", 40))
    s3.put_object(Bucket=bucket, Key="eval/part-0.tfrecord", Body=_examples(tmp_path, "e0", 16))
    code = tmp_path / "code"
    code.mkdir()
    (code / "pipemode.py").write_text(textwrap.dedent(LEGACY_MODULE))
    body = request(str(tmp_path / "out"), {"train": f"s3://{bucket}/train", "eval": f"s3://{bucket}/eval"},
                   job_name="pipe-legacy",
                   image="520713654638.dkr.ecr.us-west-2.amazonaws.com/sagemaker-tensorflow:1.11-cpu-py2",
                   hyperparameters={"sagemaker_program": "pipemode.py", "sagemaker_submit_directory": str(code),
                                    "sagemaker_region": "us-east-1", "training_steps": 10, "evaluation_steps": 2})
    body["AlgorithmSpecification"]["TrainingInputMode"] = "Pipe"
    work = tmp_path / "work"
    proc, description = run_local(["--request", write_request(tmp_path, body), "--work-dir", str(work)],
                                  timeout=400)
    assert proc.returncode == 0, explain(proc)
    assert description["TrainingJobStatus"] == "Completed"
    assert "Saving dict for global step 10:" in proc.stderr, explain(proc)
    # the example's input functions declare training_dir; the job has no 'training' channel: None, said once
    assert proc.stderr.count("asks for training_dir but the job has no 'training' channel") == 1, explain(proc)
    servo = work / "algo-1" / "model" / "export" / "Servo"
    exported = [name for name in os.listdir(servo) if (servo / name / "saved_model.pb").exists()]
    assert len(exported) == 1, os.listdir(servo)


def test_benchmark_prints_each_epochs_reading(tmp_path, job, capsys):
    job.channels({"training": "Pipe"})
    job.feed("training", {"a.txt": b"ab\ncd\nef\n"})
    dataset = PipeModeDataset("training", record_format="TextLine", benchmark=True, benchmark_records_interval=2,
                              **job.dirs)
    assert _read(dataset) == [b"ab", b"cd", b"ef"]
    out = capsys.readouterr().out
    assert "PipeModeDataset training_0: 2 records, 4 bytes\n" in out
    assert "PipeModeDataset training_0: 3 records, 6 bytes read in " in out and " MB/s)" in out
