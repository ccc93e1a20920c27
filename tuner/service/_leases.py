"""Leases of one service replica: taken on the experiment row, renewed by one background
thread, and given up (the experiment's driver told to stop) the moment one is in doubt."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tuner.controller import owner_is_dead
from tuner.store import ExperimentNotFoundError, Store, StoreError

log = logging.getLogger(__name__)


def take_lease(store: Store, name: str, owner: str, ttl: float) -> bool:
    """Acquire the experiment's lease for ``owner``; True if it is now ours.

    Free, expired (on the database clock) or already ours: taken by compare-and-set, so of
    several replicas exactly one wins. Held by a process of this host that provably died
    (``tuner/<host>/<pid>/<start ticks>``): taken over at once, as `tuner run` does, instead
    of waiting for the expiry. Raises `StoreError`.
    """
    if store.acquire_lease(name, owner, ttl):
        return True
    holder = store.get_experiment(name).lease_owner
    if holder and holder != owner and owner_is_dead(holder):
        log.info("experiment %s: taking over the lease of dead controller %s", name, holder)
        # Releasing by the dead holder's name is itself a compare-and-set: if a live peer
        # got there first, nothing changes and our acquire below fails.
        store.release_lease(name, holder)
        return store.acquire_lease(name, owner, ttl)
    return False


@dataclass
class _Held:
    spec: dict[str, Any]
    annotations: dict[str, str] | None
    lost: Callable[[str], None]
    renewed_at: float
    reported: bool = False


class LeaseKeeper:
    """Renews every lease this replica holds, every ``ttl / 3`` seconds, in one thread.

    `hold` registers an experiment whose lease was just taken, with the spec and annotations
    its driver runs and a ``lost(reason)`` callback; `forget` unregisters it (its driver then
    releases the lease). ``lost`` is called once, from the keeper's thread, when the driver
    must stop:

    - a renewal finds another owner (a peer took over after our lease expired);
    - renewals failed (database unreachable) for longer than ``2/3 * ttl`` since the last
      success: the lease may expire before we could know, so we stop before a peer starts;
    - the experiment was deleted;
    - its stored spec or annotations differ from the ones being run (``tuner submit``
      changed the counts or the observation cap): the driver stops and the service starts
      it again from the stored experiment.

    Thread-safe.
    """

    def __init__(self, store: Store, owner: str, ttl: float) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl: {ttl} is not a positive number of seconds")
        self.store = store
        self.owner = owner
        self.ttl = ttl
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def hold(
        self,
        name: str,
        spec: dict[str, Any],
        lost: Callable[[str], None],
        annotations: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            self._held[name] = _Held(spec, annotations, lost, time.monotonic())

    def forget(self, name: str) -> None:
        with self._lock:
            self._held.pop(name, None)

    def held(self) -> list[str]:
        with self._lock:
            return sorted(self._held)

    def _run(self) -> None:
        while not self._stopping.wait(self.ttl / 3):
            for name in self.held():
                self._renew(name)

    def _renew(self, name: str) -> None:
        with self._lock:
            held = self._held.get(name)
        if held is None or held.reported:
            return
        try:
            renewed = self.store.renew_lease(name, self.owner, self.ttl)
            stored = self.store.get_experiment(name) if renewed else None
        except ExperimentNotFoundError:
            self._lose(name, held, "the experiment was deleted")
            return
        except StoreError as e:
            silent = time.monotonic() - held.renewed_at
            log.warning(
                "experiment %s: renewing the lease failed (%.1fs since the last renewal): %s",
                name,
                silent,
                e,
            )
            if silent > self.ttl * 2 / 3:
                self._lose(
                    name,
                    held,
                    f"the lease could not be renewed for {silent:.1f}s (lease {self.ttl:g}s): {e}",
                )
            return
        if not renewed:
            self._lose(name, held, "another controller took over the lease")
            return
        held.renewed_at = time.monotonic()
        assert stored is not None
        if stored.spec != held.spec:
            self._lose(name, held, "its stored spec changed; restarting it from the new spec")
        elif stored.annotations != held.annotations:
            self._lose(
                name, held, "its stored annotations changed; restarting it with the new ones"
            )

    def _lose(self, name: str, held: _Held, reason: str) -> None:
        held.reported = True
        try:
            held.lost(reason)
        except Exception:  # noqa: BLE001 - one driver's callback must not stop the keeper
            log.exception("experiment %s: stopping its driver failed", name)
