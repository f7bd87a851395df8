"""The search strategies on Optuna, and the median early-stopping rule.

| Strategy | Optuna |
|---|---|
| Bayesian | ``TPESampler`` (a model-based sampler; its first trials are random) |
| Random | ``RandomSampler`` |
| Grid | ``GridSampler`` over every categorical combination, each once |
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

import statistics

from . import space

STARTUP_TRIALS = 2  # Bayesian: random trials before TPE models the results


def _sampler(config: dict, seed: int | None):
    import optuna  # noqa: PLC0415

    strategy = config["Strategy"]
    if strategy == "Random":
        return optuna.samplers.RandomSampler(seed=seed)
    if strategy == "Grid":
        grid = {r["Name"]: list(r["Values"]) for r in space.ranges_of(config)["CategoricalParameterRanges"]}
        return _grid_sampler()(grid, seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS)


def _grid_sampler():
    """Optuna's GridSampler, without its ``study.stop()`` once every combination has run (that
    is for ``optimize()``; the tuner asks and tells, and counts the combinations itself)."""
    import optuna  # noqa: PLC0415

    class Grid(optuna.samplers.GridSampler):
        def after_trial(self, study, trial, state, values):  # noqa: ARG002 - Optuna's signature
            return None

    return Grid


def _pruner(config: dict):
    import optuna  # noqa: PLC0415

    if config["Strategy"] != "Hyperband":
        return optuna.pruners.NopPruner()
    hyperband = (config.get("StrategyConfig") or {}).get("HyperbandStrategyConfig") or {}
    return optuna.pruners.HyperbandPruner(min_resource=hyperband.get("MinResource", 1),
                                          max_resource=hyperband.get("MaxResource", "auto"))


def direction(config: dict) -> str:
    return "maximize" if config["HyperParameterTuningJobObjective"]["Type"] == "Maximize" else "minimize"


class Study:
    """One tuning job's optimiser."""

    def __init__(self, config: dict, finished: list, offset: int = 0):
        """``finished``: ``(params, value or None, state, intermediate values)`` of the jobs that ended,
        the tuning job's and its warm-start parents' (state: COMPLETE, FAIL or PRUNED)."""
        import optuna  # noqa: PLC0415

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.config = config
        seed = config.get("RandomSeed")
        self.distributions = space.distributions(config)
        self.study = optuna.create_study(direction=direction(config), sampler=_sampler(
            config, None if seed is None else seed + offset), pruner=_pruner(config))
        for params, value, state, curve in finished:
            self.add(params, value, state, curve)
        self.running: dict[str, object] = {}  # training job -> its Optuna trial

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
        system_attrs = {}
        sampler = self.study.sampler
        if isinstance(sampler, optuna.samplers.GridSampler):  # the combination counts as tried
            point = tuple(params[name] for name in sampler._param_names)  # noqa: SLF001
            if point in sampler._all_grids:  # noqa: SLF001
                system_attrs = {"grid_id": sampler._all_grids.index(point),  # noqa: SLF001
                                "search_space": sampler._search_space}  # noqa: SLF001
        self.study.add_trial(optuna.trial.create_trial(
            params=params, distributions=self.distributions, state=kind,
            value=value if kind == optuna.trial.TrialState.COMPLETE else None,
            intermediate_values=dict(enumerate(curve)), system_attrs=system_attrs))

    def ask(self):
        """The next parameters: ``(params, trial)``."""
        trial = self.study.ask(self.distributions)
        return dict(trial.params), trial

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
