"""Early stopping in the reconcile loop: rules from the EarlyStopping service (medianstop),
checked against the stored observations of each running trial.

Katib hands a trial the rules known when it is created, and its metrics collector checks
them once, at the ``start_step``-th report. Here the rules are fetched again whenever a
trial ends (medianstop's rule changes only then) and apply to every running trial, on its
latest value, once it has reported ``start_step`` values; a trial that breaks every rule is
killed and recorded EarlyStopped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tuner.controller._decide import REASON_FAILED, Completion
from tuner.controller._errors import ControllerError, ExperimentRefusedError, SuggestionError
from tuner.controller._suggestions import SuggestionClient
from tuner.controller._trials import TrialRunner
from tuner.protos import api_pb2
from tuner.store import Store, TrialRecord, TrialStatus

log = logging.getLogger(__name__)

_COMPARISONS = {api_pb2.LESS: "below", api_pb2.GREATER: "above", api_pb2.EQUAL: "equal to"}


@dataclass(frozen=True)
class StoppingRule:
    """Stop a trial once it has ``start_step`` reports of ``metric`` (at least one) and the
    latest is ``comparison`` (``below``, ``above``, ``equal to``) ``value``."""

    metric: str
    value: float
    comparison: str
    start_step: int

    def broken_by(self, values: Sequence[float]) -> bool:
        if len(values) < max(self.start_step, 1):
            return False
        latest = values[-1]
        if self.comparison == "below":
            return latest < self.value
        if self.comparison == "above":
            return latest > self.value
        return latest == self.value

    def explain(self, values: Sequence[float]) -> str:
        return (
            f"{self.metric} {values[-1]!r} after {len(values)} reports is {self.comparison}"
            f" {self.value!r}"
        )


def parse_rules(messages: Iterable[api_pb2.EarlyStoppingRule]) -> list[StoppingRule]:
    """The service's rules; one that cannot be applied (unknown comparison, a value that is
    not a number) is left out with a warning rather than stopping trials on a guess."""
    rules = []
    for i, message in enumerate(messages):
        comparison = _COMPARISONS.get(message.comparison)
        try:
            value = float(message.value)
        except ValueError:
            value = math.nan
        if comparison is None or not math.isfinite(value) or not message.name:
            log.warning(
                "early_stopping_rules[%d]: %r is not a rule tuner can apply; ignored",
                i,
                str(message).replace("\n", " "),
            )
            continue
        rules.append(StoppingRule(message.name, value, comparison, max(message.start_step, 0)))
    return rules


def validate_early_stopping(client: SuggestionClient, experiment: api_pb2.Experiment) -> None:
    """ValidateEarlyStoppingSettings; `ExperimentRefusedError` when refused or not served."""
    try:
        client.validate_early_stopping(experiment.spec.early_stopping)
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
        experiment: api_pb2.Experiment,
        db_manager_address: str,
    ) -> None:
        self.store = store
        self.client = client
        self.experiment = experiment
        self.db_manager_address = db_manager_address
        self.algorithm = experiment.spec.early_stopping.algorithm_name
        self.rules: list[StoppingRule] | None = None

    def step(
        self,
        runner: TrialRunner,
        ended: Sequence[TrialRecord],
        trials: Mapping[str, api_pb2.Trial],
    ) -> Completion | None:
        """One pass: update the rules, stop the live trials that break them. Returns the
        experiment's failure when the service failed for good; raises `ControllerError`
        when it stayed unavailable (as for GetSuggestions)."""
        try:
            self.update(ended, list(trials.values()))
        except SuggestionError as e:
            if e.retryable:
                raise ControllerError(
                    f"{e}; running trials keep running: rerun the same command to resume"
                ) from e
            return Completion(False, REASON_FAILED, f"EarlyStopping has failed: {e}")
        for name, why in self.decide(runner.live_names).items():
            log.info("experiment %s: stopping trial %s: %s", self.experiment.name, name, why)
            runner.early_stop(name, why)
        return None

    def update(self, ended: Sequence[TrialRecord], trials: Sequence[api_pb2.Trial]) -> None:
        """Notify the service of early-stopped trials; fetch the rules if a trial ended.
        Raises `SuggestionError`."""
        for trial in ended:
            if trial.status is TrialStatus.EARLY_STOPPED:
                self._notify(trial.name)
        if ended or self.rules is None:
            rules = parse_rules(
                self.client.early_stopping_rules(self.experiment, trials, self.db_manager_address)
            )
            if rules != self.rules:
                log.info("experiment %s: early-stopping rules %s", self.experiment.name, rules)
            self.rules = rules

    def decide(self, running: Iterable[str]) -> dict[str, str]:
        """Trial name -> why, for each of ``running`` that breaks every rule now."""
        if not self.rules:
            return {}
        stops = {}
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
