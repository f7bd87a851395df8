"""The search strategies on Optuna, and the median early-stopping rule.

| Strategy | Optuna |
|---|---|
| Bayesian | ``TPESampler``, multivariate, with a constant liar for the jobs still running (its first trials, half the budget up to 10, are random) |
| Random | ``RandomSampler`` |
| Grid | every categorical combination once, in an order of the seed (each enqueued as an Optuna trial) |
| Hyperband | ``TPESampler`` and ``HyperbandPruner`` (``MinResource`` / ``MaxResource`` from HyperbandStrategyConfig) |

A study lives in memory and is rebuilt from the stored training jobs
whenever the tuner starts (a restarted serve): each finished job becomes a
finished trial (its parameters, its objective or FAIL, its intermediate
values), so the sampler sees exactly what it saw before. ``RandomSeed``
seeds the sampler, offset by the number of trials already made so that a
rebuilt study does not repeat its first choices.

Intermediate values are the objective metric's values in a job's log, in
order: the n-th match is step n.
"""

from __future__ import annotations

import itertools
import random
import statistics
import warnings

from . import space



def startup_trials(budget: int) -> int:
    """Bayesian: the random trials before TPE models the results: half the budget, 2 to 10
    (benchmarks/tuning.py: fewer let TPE settle early on a poor region)."""
    return max(2, min(10, budget // 2))


def _sampler(config: dict, seed: int | None):
    import optuna  # noqa: PLC0415

    strategy = config["Strategy"]
    if strategy == "Random":
        return optuna.samplers.RandomSampler(seed=seed)
    if strategy == "Grid":  # the combinations come from Study.ask, in the order of _grid
        return optuna.samplers.RandomSampler(seed=seed)
    with warnings.catch_warnings():  # multivariate and constant_liar are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                          n_startup_trials=startup_trials(space.max_jobs(config)))


def _pruner(config: dict):
    import optuna  # noqa: PLC0415

    if config["Strategy"] != "Hyperband":
        return optuna.pruners.NopPruner()
    hyperband = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
    return optuna.pruners.HyperbandPruner(min_resource=hyperband.get("MinResource", 1),
                                          max_resource=hyperband.get("MaxResource", "auto"))


def _grid(config: dict) -> list[dict]:
    """Every combination of the categorical ranges, in an order of the RandomSeed (0 without one)."""
    ranges = space.ranges_of(config)["CategoricalParameterRanges"]
    combinations = [dict(zip([r["Name"] for r in ranges], values))
                    for values in itertools.product(*[r["Values"] for r in ranges])]
    random.Random(config.get("RandomSeed", 0)).shuffle(combinations)
    return combinations


def direction(config: dict) -> str:
    return "maximize" if config["HyperParameterTuningJobObjective"]["Type"] == "Maximize" else "minimize"


class Study:
    """One tuning job's optimiser."""

    def __init__(self, config: dict, finished: list, offset: int = 0, name: str = "tuning"):
        """``finished``: ``(params, value or None, state, intermediate values)`` of the jobs that ended,
        the tuning job's and its warm-start parents' (state: COMPLETE, FAIL or PRUNED)."""
        import optuna  # noqa: PLC0415

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.config = config
        seed = config.get("RandomSeed")
        self.distributions = space.distributions(config)
        # the study's name is the tuning job's: Hyperband puts a trial in its bracket by a hash of both
        self.study = optuna.create_study(study_name=name, direction=direction(config), sampler=_sampler(
            config, None if seed is None else seed + offset), pruner=_pruner(config))
        for params, value, state, curve in finished:
            self.add(params, value, state, curve)
        self.running: dict[str, object] = {}  # training job -> its Optuna trial
        self.grid = _grid(config) if config["Strategy"] == "Grid" else None

    def add(self, params: dict, value, state: str, curve=()) -> None:
        import optuna  # noqa: PLC0415

        if set(params) != set(self.distributions) or not all(
                self.distributions[k]._contains(self.distributions[k].to_internal_repr(v))  # noqa: SLF001
                for k, v in params.items()):
            return  # a parent job of another search space (TransferLearning): its parameters do not fit
        kind = {"COMPLETE": optuna.trial.TrialState.COMPLETE, "PRUNED": optuna.trial.TrialState.PRUNED}.get(
            state, optuna.trial.TrialState.FAIL)
        if kind == optuna.trial.TrialState.COMPLETE and value is None:
            kind = optuna.trial.TrialState.FAIL
        self.study.add_trial(optuna.trial.create_trial(
            params=params, distributions=self.distributions, state=kind,
            value=value if kind == optuna.trial.TrialState.COMPLETE else None,
            intermediate_values=dict(enumerate(curve))))

    def ask(self):
        """The next parameters: ``(params, trial)``. Grid: the first combination of its order that
        no trial has (a finished one, a running one, or one a parent job ran)."""
        if self.grid is not None:
            tried = {tuple(sorted(t.params.items())) for t in self.study.get_trials(deepcopy=False)}
            left = [c for c in self.grid if tuple(sorted(c.items())) not in tried]
            if left:
                self.study.enqueue_trial(left[0])
        trial = self.study.ask(self.distributions)
        return dict(trial.params), trial

    def resume(self, name: str, params: dict) -> None:
        """A training job that had not ended when the study was rebuilt gets its trial again."""
        self.study.enqueue_trial(params)
        self.running[name] = self.study.ask(self.distributions)

    def report(self, trial, curve: list) -> bool:
        """Hyperband: report the running job's values; True when Optuna prunes it."""
        for step, value in enumerate(curve):
            if step not in trial.storage.get_trial(trial._trial_id).intermediate_values:  # noqa: SLF001
                trial.report(value, step)
        return bool(curve) and trial.should_prune()

    def tell(self, trial, value, state: str) -> None:
        import optuna  # noqa: PLC0415

        if state == "COMPLETE" and value is not None:
            self.study.tell(trial, value)
        elif state == "PRUNED":
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)


def median_stops(curve: list, completed: list, maximize: bool) -> bool:
    """The median rule (TrainingJobEarlyStoppingType Auto): after step n, the running average of
    this job's objective is worse than the median of the running averages of the completed jobs
    up to step n (a job that ended earlier counts with its last value)."""
    if not curve or not completed:
        return False
    step = len(curve)

    def average(values: list) -> float:
        extended = (list(values) + [values[-1]] * step)[:step]
        return sum(extended) / step

    others = [average(c) for c in completed if c]
    if not others:
        return False
    median, mine = statistics.median(others), average(curve)
    return mine < median if maximize else mine > median
