"""A tuning request's checks beyond botocore's model, and its search space.

botocore's model (protocol.py) already holds the shapes, enums and lengths (a
categorical range has at most 30 values, a name at most 32 characters). What
the platform checks on top, checked here before anything is stored, each a
``ValidationException`` naming the field: the objective metric is one of the
training job definition's MetricDefinitions; a range's bounds parse and
``MinValue <= MaxValue``; Logarithmic scaling needs ``MinValue > 0``,
ReverseLogarithmic a continuous range within ``[0, 1)``; a name is tuned once
and is not also static; Grid takes categorical ranges only (every
combination is one training job); Hyperband does its own early stopping.

Values go to the training jobs as the platform sends them: plain strings
(``"7"``, ``"0.0123"``, a categorical value verbatim: the SDK has already
JSON-encoded a framework estimator's categorical values).
"""

from __future__ import annotations

import math

SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
GRID_LIMIT = 10000  # combinations of a Grid tuning job (the README's Limits table)


class SpaceError(ValueError):
    """A tuning request the platform would refuse (the message is the ValidationException's)."""


def ranges_of(config: dict) -> dict:
    ranges = config.get("ParameterRanges") or {}
    return {"IntegerParameterRanges": list(ranges.get("IntegerParameterRanges") or []),
            "ContinuousParameterRanges": list(ranges.get("ContinuousParameterRanges") or []),
            "CategoricalParameterRanges": list(ranges.get("CategoricalParameterRanges") or [])}


def _number(kind: str, text: str, where: str):
    try:
        value = int(text) if kind == "Integer" else float(text)
    except (TypeError, ValueError):
        raise SpaceError(f"{where} {text!r} is not {'an integer' if kind == 'Integer' else 'a number'}.") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise SpaceError(f"{where} {text!r} is not a finite number.")
    return value


def check(request: dict) -> None:
    """Raise SpaceError for what the platform refuses in a CreateHyperParameterTuningJob request."""
    config = request["HyperParameterTuningJobConfig"]
    if request.get("TrainingJobDefinitions"):
        raise SpaceError("TrainingJobDefinitions (several estimators in one tuning job) is not supported by "
                         "sagemaker-training serve: give one TrainingJobDefinition.")
    if request.get("Autotune"):
        raise SpaceError("Autotune is not supported by sagemaker-training serve: give the strategy, the objective "
                         "and the ranges.")
    definition = request.get("TrainingJobDefinition")
    if not definition:
        raise SpaceError("TrainingJobDefinition is required.")
    objective = config.get("HyperParameterTuningJobObjective")
    if not objective:
        raise SpaceError("HyperParameterTuningJobConfig.HyperParameterTuningJobObjective is required: the metric "
                         "to minimize or maximize.")
    metrics = [m["Name"] for m in (definition["AlgorithmSpecification"].get("MetricDefinitions") or [])]
    if objective["MetricName"] not in metrics:
        raise SpaceError(f"The objective metric {objective['MetricName']!r} is not among the training job "
                         f"definition's MetricDefinitions ({', '.join(map(repr, metrics)) or 'none'}): add a "
                         "metric definition of that name, whose regex finds its value in the job's log.")
    strategy = config["Strategy"]
    ranges = ranges_of(config)
    names: list[str] = []
    for kind in ("Integer", "Continuous"):
        for i, r in enumerate(ranges[f"{kind}ParameterRanges"]):
            where = f"HyperParameterTuningJobConfig.ParameterRanges.{kind}ParameterRanges[{i}] ({r['Name']})"
            low, high = _number(kind, r["MinValue"], f"{where} MinValue"), _number(kind, r["MaxValue"],
                                                                                    f"{where} MaxValue")
            if low > high:
                raise SpaceError(f"{where}: MinValue {r['MinValue']} is greater than MaxValue {r['MaxValue']}.")
            scaling = r.get("ScalingType", "Auto")
            if scaling == "Logarithmic" and low <= 0:
                raise SpaceError(f"{where}: Logarithmic scaling needs MinValue greater than 0.")
            if scaling == "ReverseLogarithmic" and (kind == "Integer" or low < 0 or high >= 1):
                raise SpaceError(f"{where}: ReverseLogarithmic scaling is for continuous ranges within [0, 1) only.")
            names.append(r["Name"])
    for r in ranges["CategoricalParameterRanges"]:
        names.append(r["Name"])
    if not names:
        raise SpaceError("HyperParameterTuningJobConfig.ParameterRanges: give at least one range to tune.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpaceError(f"Hyperparameter(s) {', '.join(repeated)} appear in more than one range.")
    static = set(definition.get("StaticHyperParameters") or {})
    both = sorted(static.intersection(names))
    if both:
        raise SpaceError(f"Hyperparameter(s) {', '.join(both)} are both static and tuned: remove them from "
                         "StaticHyperParameters.")
    if strategy == "Grid":
        if ranges["IntegerParameterRanges"] or ranges["ContinuousParameterRanges"]:
            raise SpaceError("The Grid strategy takes categorical ranges only (CategoricalParameterRanges): "
                             "list the integer and continuous values to try as categorical values.")
        if grid_size(config) > GRID_LIMIT:
            raise SpaceError(f"The Grid strategy's ranges make {grid_size(config)} combinations; at most "
                             f"{GRID_LIMIT}.")
    elif not config["ResourceLimits"].get("MaxNumberOfTrainingJobs"):
        raise SpaceError(f"ResourceLimits.MaxNumberOfTrainingJobs is required for the {strategy} strategy (only "
                         "Grid computes it).")
    if strategy == "Hyperband" and config.get("TrainingJobEarlyStoppingType", "Off") != "Off":
        raise SpaceError("The Hyperband strategy stops training jobs early itself: TrainingJobEarlyStoppingType "
                         "must be Off.")
    if strategy != "Hyperband" and (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig"):
        raise SpaceError("StrategyConfig.HyperbandStrategyConfig is for the Hyperband strategy only.")
    hyperband = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
    if hyperband.get("MinResource") and hyperband.get("MaxResource") and \
            hyperband["MinResource"] > hyperband["MaxResource"]:
        raise SpaceError("HyperbandStrategyConfig: MinResource is greater than MaxResource.")


def grid_size(config: dict) -> int:
    return math.prod(len(r["Values"]) for r in ranges_of(config)["CategoricalParameterRanges"])


def max_jobs(config: dict) -> int:
    """How many training jobs the tuning job runs at most (Grid: every combination, within the limit)."""
    given = config["ResourceLimits"].get("MaxNumberOfTrainingJobs")
    if config["Strategy"] == "Grid":
        return min(grid_size(config), given) if given else grid_size(config)
    return given


def distributions(config: dict) -> dict:
    """name -> Optuna distribution. ReverseLogarithmic ``x`` is sampled as ``1 - x`` on a log scale."""
    import optuna  # noqa: PLC0415 - Optuna only when a tuning job runs

    ranges = ranges_of(config)
    space = {}
    for r in ranges["IntegerParameterRanges"]:
        space[r["Name"]] = optuna.distributions.IntDistribution(
            int(r["MinValue"]), int(r["MaxValue"]), log=r.get("ScalingType") == "Logarithmic")
    for r in ranges["ContinuousParameterRanges"]:
        low, high = float(r["MinValue"]), float(r["MaxValue"])
        scaling = r.get("ScalingType", "Auto")
        if scaling == "ReverseLogarithmic":
            space[r["Name"]] = optuna.distributions.FloatDistribution(1 - high, 1 - low, log=True)
        else:
            space[r["Name"]] = optuna.distributions.FloatDistribution(low, high, log=scaling == "Logarithmic")
    for r in ranges["CategoricalParameterRanges"]:
        space[r["Name"]] = optuna.distributions.CategoricalDistribution(list(r["Values"]))
    return space


def encoded(config: dict, params: dict) -> dict:
    """The training job's hyperparameter strings for Optuna's ``params``."""
    reverse = {r["Name"] for r in ranges_of(config)["ContinuousParameterRanges"]
               if r.get("ScalingType") == "ReverseLogarithmic"}
    answer = {}
    for name, value in params.items():
        if name in reverse:
            value = 1 - value
        answer[name] = value if isinstance(value, str) else str(int(value)) if isinstance(value, int) else repr(
            float(value))
    return answer
