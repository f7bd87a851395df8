"""serve's tuning pieces without a server: the search space (scaling types, the values as the
training jobs get them), RandomSeed, a study rebuilt from stored results, the median rule."""

from __future__ import annotations

import math

import pytest

from sagemaker_training.serve.tuning import space, strategy, tuner


def _config(strategy_name="Random", seed=None, **ranges) -> dict:
    config = {"Strategy": strategy_name, "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "loss"},
              "ResourceLimits": {"MaxNumberOfTrainingJobs": 20, "MaxParallelTrainingJobs": 2},
              "ParameterRanges": ranges}
    if seed is not None:
        config["RandomSeed"] = seed
    return config


def _asked(config: dict, n: int, tell=None) -> list[dict]:
    study = strategy.Study(config, [])
    answers = []
    for _ in range(n):
        params, trial = study.ask()
        answers.append(space.encoded(config, params))
        study.tell(trial, tell(params) if tell else 1.0, "COMPLETE")
    return answers


def test_scaling_types_and_the_strings_jobs_get():
    config = _config(
        seed=1,
        IntegerParameterRanges=[{"Name": "units", "MinValue": "1", "MaxValue": "1000", "ScalingType": "Logarithmic"}],
        ContinuousParameterRanges=[
            {"Name": "momentum", "MinValue": "0.9", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
            {"Name": "lr", "MinValue": "0.0001", "MaxValue": "1", "ScalingType": "Logarithmic"},
            {"Name": "dropout", "MinValue": "0", "MaxValue": "0.5", "ScalingType": "Linear"}],
        CategoricalParameterRanges=[{"Name": "optimizer", "Values": ['"sgd"', '"adam"']}])
    jobs = _asked(config, 40)
    for job in jobs:
        assert str(int(job["units"])) == job["units"] and 1 <= int(job["units"]) <= 1000
        assert 0.9 <= float(job["momentum"]) <= 0.999
        assert 0.0001 <= float(job["lr"]) <= 1 and 0 <= float(job["dropout"]) <= 0.5
        assert job["optimizer"] in ('"sgd"', '"adam"')  # the SDK's JSON-encoded value, verbatim
    # log scale: about half the draws fall in the lower half of the decades (1e-4..1e-2)
    assert 10 <= sum(float(j["lr"]) < 0.01 for j in jobs) <= 30
    # reverse log: most draws are close to 1
    assert sum(float(j["momentum"]) > 0.99 for j in jobs) >= 10


def test_random_seed_makes_the_choices_reproducible():
    ranges = {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "1"}]}
    for name in ("Random", "Bayesian"):
        first = _asked(_config(name, 42, **ranges), 6, tell=lambda p: (p["lr"] - 0.3) ** 2)
        again = _asked(_config(name, 42, **ranges), 6, tell=lambda p: (p["lr"] - 0.3) ** 2)
        other = _asked(_config(name, 43, **ranges), 6, tell=lambda p: (p["lr"] - 0.3) ** 2)
        assert first == again and first != other, name


def test_a_rebuilt_grid_study_runs_only_the_combinations_left():
    config = _config("Grid", 3, CategoricalParameterRanges=[{"Name": "a", "Values": ["1", "2"]},
                                                            {"Name": "b", "Values": ["x", "y", "z"]}])
    done = [({"a": "1", "b": "x"}, 0.5, "COMPLETE", []), ({"a": "2", "b": "z"}, None, "FAIL", [])]
    study = strategy.Study(config, done, offset=2)
    rest = {tuple(sorted(study.ask()[0].items())) for _ in range(4)}
    assert rest == {(("a", "1"), ("b", "y")), (("a", "1"), ("b", "z")), (("a", "2"), ("b", "x")),
                    (("a", "2"), ("b", "y"))}


def test_hyperband_prunes_bad_curves_once_it_has_good_ones():
    config = _config("Hyperband", 1, ContinuousParameterRanges=[{"Name": "lr", "MinValue": "0", "MaxValue": "1"}])
    config["StrategyConfig"] = {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 9}}
    study = strategy.Study(config, [], name="hb-1")
    outcomes = []
    for i in range(12):
        _, trial = study.ask()
        bad, curve, pruned = i % 3 == 2, [], False
        for step in range(9):
            curve.append(10.0 + step if bad else 1.0 / (step + 1))
            if study.report(trial, curve):
                pruned = True
                break
        study.tell(trial, curve[-1], "PRUNED" if pruned else "COMPLETE")
        outcomes.append((bad, pruned))
    assert not any(pruned for bad, pruned in outcomes if not bad)
    assert [pruned for bad, pruned in outcomes if bad][-2:] == [True, True]


def test_median_rule():
    completed = [[1.0, 0.6, 0.4], [1.2, 0.8, 0.5], [0.9, 0.5]]
    assert strategy.median_stops([5.0], completed, maximize=False)
    assert not strategy.median_stops([0.9, 0.4], completed, maximize=False)
    assert strategy.median_stops([0.1, 0.1], [[0.8, 0.9], [0.7, 0.9]], maximize=True)
    assert not strategy.median_stops([5.0], [], maximize=False)  # nothing to compare with yet


@pytest.mark.parametrize("change, message", [
    ({"Strategy": "Hyperband", "TrainingJobEarlyStoppingType": "Auto"}, "Hyperband strategy stops"),
    ({"ParameterRanges": {}}, "at least one range"),
    ({"ParameterRanges": {"IntegerParameterRanges": [{"Name": "n", "MinValue": "0", "MaxValue": "5",
                                                      "ScalingType": "Logarithmic"}]}}, "MinValue greater than 0"),
    ({"ParameterRanges": {"ContinuousParameterRanges": [{"Name": "m", "MinValue": "0.5", "MaxValue": "1",
                                                         "ScalingType": "ReverseLogarithmic"}]}}, "within [0, 1)"),
    ({"ParameterRanges": {"IntegerParameterRanges": [{"Name": "n", "MinValue": "a", "MaxValue": "5"}]}},
     "'a' is not an integer"),
    ({"ParameterRanges": {"ContinuousParameterRanges": [{"Name": "n", "MinValue": "nan", "MaxValue": "5"}]}},
     "not a finite number"),
    ({"ParameterRanges": {"CategoricalParameterRanges": [{"Name": "epochs", "Values": ["1"]}]}},
     "both static and tuned"),
])
def test_requests_the_platform_refuses(change, message):
    request = {"HyperParameterTuningJobName": "t",
               "HyperParameterTuningJobConfig": {**_config(IntegerParameterRanges=[
                   {"Name": "n", "MinValue": "1", "MaxValue": "5"}]), **change},
               "TrainingJobDefinition": {"AlgorithmSpecification": {"MetricDefinitions": [
                   {"Name": "loss", "Regex": "loss=([0-9.]+)"}]}, "StaticHyperParameters": {"epochs": "3"}}}
    with pytest.raises(space.SpaceError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        space.check(request)


def test_training_job_names_are_the_platforms():
    name = tuner.training_job_name("my-tuning-job", 7, {"lr": "0.1"})
    prefix, number, digest = name.rsplit("-", 2)
    assert prefix == "my-tuning-job" and number == "007" and len(digest) == 8
    assert int(digest, 16) >= 0 and name != tuner.training_job_name("my-tuning-job", 7, {"lr": "0.2"})
    assert len(tuner.training_job_name("x" * 32, 500, {})) <= 63
    assert math.isfinite(float(space.encoded(_config(), {"lr": 0.1})["lr"]))
