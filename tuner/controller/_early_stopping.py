"""Early stopping in the reconcile loop: rules from the EarlyStopping service (medianstop),
checked against the stored observations of each running trial, and the trials a per-trial
algorithm (asha) names.

Katib hands a trial the rules known when it is created, and its metrics collector checks
them once, at the ``start_step``-th report. Here the rules are fetched again whenever a
trial ends (medianstop's rule changes only then) and apply to every running trial, on its
latest value, once it has reported ``start_step`` values; a trial that breaks every rule is
killed and recorded EarlyStopped. A service whose answer is "live" (tuner's extension, for
asha) is asked again whenever a running trial has reported a new objective value, and the
running trials it names are stopped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence

from tuner.controller._decide import REASON_FAILED, Completion
from tuner.controller._errors import ControllerError, ExperimentRefusedError, SuggestionError
from tuner.controller._rules import EarlyStoppingAnswer, StoppingRule
from tuner.controller._suggestions import SuggestionClient
from tuner.controller._trials import TrialRunner
from tuner.spec import Experiment
from tuner.store import Observation, Store, TrialRecord, TrialStatus

log = logging.getLogger(__name__)


def validate_early_stopping(client: SuggestionClient, experiment: Experiment) -> None:
    """ValidateEarlyStoppingSettings; `ExperimentRefusedError` when refused or not served."""
    try:
        client.validate_early_stopping(experiment)
    except SuggestionError as e:
        if e.code != "UNIMPLEMENTED":
            raise
        raise ExperimentRefusedError(
            f"spec.earlyStopping: the suggestion service at {client.address} has no"
            " EarlyStopping service (api.v1.beta1.EarlyStopping); use tuner's suggestion"
            " server or remove earlyStopping"
        ) from e


class EarlyStopper:
    """Keeps the experiment's early-stopping rules current and says which trials to stop.

    After each poll of the reconcile loop call :meth:`step` (or :meth:`update` then
    :meth:`decide`) with the trials that ended: it fetches the rules on the first call and
    whenever a trial ended, tells the service about trials recorded EarlyStopped (as Katib's
    collector does with ``SetTrialStatus``) and stops the trials that break the rules.
    Not thread-safe.
    """

    def __init__(
        self,
        store: Store,
        client: SuggestionClient,
        experiment: Experiment,
        db_manager_address: str,
    ) -> None:
        if experiment.spec.early_stopping is None:
            raise ValueError(f"experiment {experiment.metadata.name!r} has no earlyStopping")
        self.store = store
        self.client = client
        self.experiment = experiment
        self.name = experiment.metadata.name
        self.db_manager_address = db_manager_address
        self.algorithm = experiment.spec.early_stopping.algorithm_name
        self.rules: list[StoppingRule] | None = None
        self.stops: dict[str, str] = {}
        self.live = False
        # Running trial -> how many objective values it had stored at the last fetch, and
        # the newest one's step.
        self._reported: dict[str, tuple[int, int | None]] = {}

    def step(
        self,
        runner: TrialRunner,
        ended: Sequence[TrialRecord],
        trials: Mapping[str, TrialRecord],
    ) -> Completion | None:
        """One pass: update the rules, stop the live trials that break them. Returns the
        experiment's failure when the service failed for good; raises `ControllerError`
        when it stayed unavailable (as for GetSuggestions)."""
        try:
            self.update(ended, list(trials.values()))
            if self.live and not ended:
                self._refresh_if_reported(runner.live_names, list(trials.values()))
        except SuggestionError as e:
            if e.retryable:
                raise ControllerError(
                    f"{e}; running trials keep running: rerun the same command to resume"
                ) from e
            return Completion(False, REASON_FAILED, f"EarlyStopping has failed: {e}")
        for name, why in self.decide(runner.live_names).items():
            log.info("experiment %s: stopping trial %s: %s", self.name, name, why)
            runner.early_stop(name, why)
        return None

    def update(self, ended: Sequence[TrialRecord], trials: Sequence[TrialRecord]) -> None:
        """Notify the service of early-stopped trials; fetch the rules if a trial ended.
        Raises `SuggestionError`."""
        for trial in ended:
            if trial.status is TrialStatus.EARLY_STOPPED:
                self._notify(trial.name)
        if ended or self.rules is None:
            self._fetch(trials)

    def _fetch(self, trials: Sequence[TrialRecord]) -> None:
        answer: EarlyStoppingAnswer = self.client.early_stopping_rules(
            self.experiment, trials, self.db_manager_address
        )
        if answer.rules != self.rules:
            log.info("experiment %s: early-stopping rules %s", self.name, answer.rules)
        self.rules, self.stops, self.live = answer.rules, answer.stops, answer.live

    def _refresh_if_reported(self, running: Iterable[str], trials: Sequence[TrialRecord]) -> None:
        """Fetch again if a running trial reported an objective value since the last fetch."""
        metric = self.experiment.spec.objective.objective_metric_name
        # How many values and the newest one's step: a log thinned to its cap may hold as
        # many values after a report as before it, never the same newest step.
        counts = {name: _reported(self.store.get_observations(name, metric)) for name in running}
        if any(self._reported.get(name, (0, None)) != n for name, n in counts.items()):
            self._fetch(trials)
        self._reported = counts

    def decide(self, running: Iterable[str]) -> dict[str, str]:
        """Trial name -> why, for each of ``running`` that breaks every rule now or that the
        service named."""
        stops = {}
        running = list(running)
        for name in running:
            if name in self.stops:
                stops[name] = f"EarlyStopped: {self.stops[name]}"
        if not self.rules:
            return stops
        for name in running:
            histories: dict[str, list[float]] = {}
            reasons = []
            for rule in self.rules:
                if rule.metric not in histories:
                    histories[rule.metric] = [
                        o.value
                        for o in self.store.get_observations(name, rule.metric)
                        if math.isfinite(o.value)
                    ]
                values = histories[rule.metric]
                if not rule.broken_by(values):
                    break
                reasons.append(rule.explain(values))
            else:
                stops[name] = f"EarlyStopped: {'; '.join(reasons)} ({self.algorithm} rule)"
        return stops

    def _notify(self, trial_name: str) -> None:
        try:
            self.client.set_trial_status(trial_name)
        except SuggestionError as e:  # a courtesy call: the store already has the state
            log.warning("SetTrialStatus for trial %s: %s", trial_name, e)


def _reported(observations: Sequence[Observation]) -> tuple[int, int | None]:
    return len(observations), observations[-1].step if observations else None
