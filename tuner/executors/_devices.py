"""Accelerators and CPUs for local trials: what the primary container's ``resources.limits``
ask for, the pools of this machine's devices, and which trial holds which.

A trial asking ``nvidia.com/gpu: 1`` gets one device of the pool to itself, named to it in
``CUDA_VISIBLE_DEVICES`` (``amd.com/gpu``: ``ROCR_VISIBLE_DEVICES``); when none is free it
waits. What a trial holds is written beside it (``resources.json`` in its directory) and in
its executor reference, so a restarted controller re-derives the pool from the trials it
adopts instead of from memory.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tuner.executors._base import LaunchError

GPU_RESOURCES: Mapping[str, str] = {
    "nvidia.com/gpu": "CUDA_VISIBLE_DEVICES",
    "amd.com/gpu": "ROCR_VISIBLE_DEVICES",
}
"""The accelerator resource names the local executor shares out, with the variable that
names a trial's devices to it."""

# Where each vendor's pool comes from when ``--gpus`` is not given: the controller's own
# visibility variables first (a pool already narrowed by the user), then the vendor's tool.
_POOL_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "nvidia.com/gpu": ("CUDA_VISIBLE_DEVICES",),
    "amd.com/gpu": ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"),
}
_NVIDIA_SMI_LINE = re.compile(r"^GPU (\d+):", re.MULTILINE)
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_CPU_QUANTITY = re.compile(r"(\d+(?:\.\d+)?|\.\d+)(m?)")


@dataclass(frozen=True)
class ResourceRequest:
    """What one trial asks for: accelerators per resource name, and CPUs (None: no limit)."""

    gpus: Mapping[str, int] = field(default_factory=dict)
    cpus: int | None = None

    @property
    def empty(self) -> bool:
        return not any(self.gpus.values()) and self.cpus is None


def parse_request(container: Mapping[str, Any] | None, where: str) -> ResourceRequest:
    """The request in a container's ``resources.limits`` (``requests`` when a limit is
    absent, as Kubernetes defaults a missing GPU request to its limit and back). ``where``
    names the container in errors, which name the field and the value."""
    resources = (container or {}).get("resources") or {}
    if not isinstance(resources, Mapping):
        return ResourceRequest()
    limits: dict[str, Any] = {}
    for key in ("requests", "limits"):  # a limit wins over a request
        part = resources.get(key)
        if isinstance(part, Mapping):
            limits.update(part)
    gpus = {}
    for name in GPU_RESOURCES:
        if name in limits:
            value = limits[name]
            count = _whole(value)
            if count is None:
                raise LaunchError(
                    f"{where}: resources.limits.{name}: {value!r} is not a whole number of devices"
                )
            gpus[name] = count
    cpus = None
    if "cpu" in limits:
        cpus = _cpu_count(limits["cpu"])
        if cpus is None:
            raise LaunchError(
                f"{where}: resources.limits.cpu: {limits['cpu']!r} is not a CPU quantity"
                " (like 2, 0.5 or 500m)"
            )
    return ResourceRequest(gpus, cpus)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _cpu_count(value: Any) -> int | None:
    """A Kubernetes CPU quantity rounded up to whole CPUs (at least 1)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        amount = float(value)
    elif isinstance(value, str) and (match := _CPU_QUANTITY.fullmatch(value.strip())):
        amount = float(match[1]) / (1000 if match[2] else 1)
    else:
        return None
    if not amount > 0 or not math.isfinite(amount):
        return None
    return max(1, math.ceil(amount))


def parse_device_list(text: str, field_name: str) -> tuple[str, ...]:
    """``0,1,3`` (or a list of ids, or UUIDs) as device ids; empty means none."""
    ids = [part.strip() for part in text.split(",") if part.strip()]
    for device in ids:
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", device):
            raise LaunchError(f"{field_name}: {device!r} is not a device id (like 0 or GPU-<uuid>)")
    if len(set(ids)) != len(ids):
        raise LaunchError(f"{field_name}: {text!r} names a device twice")
    return tuple(ids)


def detect_devices(
    resource: str, environ: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], str]:
    """This machine's devices of ``resource`` and where that list came from."""
    environ = os.environ if environ is None else environ
    for variable in _POOL_VARIABLES.get(resource, ()):
        if variable in environ:
            value = environ[variable]
            # CUDA's ways of saying "no device" (any id CUDA cannot parse ends the list).
            if value.strip() in ("-1", "NoDevFiles"):
                return (), f"{variable}={value}"
            return parse_device_list(value, variable), f"{variable}={value}"
    if resource == "nvidia.com/gpu" and (tool := shutil.which("nvidia-smi")):
        try:
            listing = subprocess.run(
                [tool, "-L"], capture_output=True, text=True, timeout=20, check=False
            ).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""
        return tuple(_NVIDIA_SMI_LINE.findall(listing)), "nvidia-smi -L"
    return (), f"no {' or '.join(_POOL_VARIABLES.get(resource, ()))} and no --gpus"


@dataclass(frozen=True)
class Allocation:
    """What one trial holds: device ids per resource name, and CPU ids (None: no affinity)."""

    devices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cpus: tuple[int, ...] | None = None
    threads: int | None = None

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The variables this allocation sets in the trial's ``env``: the devices always (a
        template's own ``CUDA_VISIBLE_DEVICES`` would break the sharing), the thread counts
        unless ``env`` has them (a template that sets ``OMP_NUM_THREADS`` keeps it)."""
        added = {}
        if self.threads is not None:
            added = {k: str(self.threads) for k in _THREAD_VARIABLES if k not in env}
        added.update({GPU_RESOURCES[name]: ",".join(ids) for name, ids in self.devices.items()})
        return added

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"devices": {k: list(v) for k, v in self.devices.items()}}
        if self.cpus is not None:
            document["cpus"] = list(self.cpus)
        if self.threads is not None:
            document["threads"] = self.threads
        return document

    @classmethod
    def from_json(cls, document: Any) -> Allocation | None:
        if not isinstance(document, Mapping) or not isinstance(document.get("devices"), Mapping):
            return None
        devices = {
            str(name): tuple(str(d) for d in ids)
            for name, ids in document["devices"].items()
            if isinstance(ids, list)
        }
        cpus = document.get("cpus")
        threads = document.get("threads")
        return cls(
            devices,
            tuple(int(c) for c in cpus) if isinstance(cpus, list) else None,
            threads if isinstance(threads, int) else None,
        )


class ResourcePool:
    """The devices of this machine and which trial holds which. Thread-safe.

    ``gpus`` (``--gpus``) replaces detection for every accelerator resource; otherwise each
    resource's pool is detected on first use (:func:`detect_devices`). CPUs are the ones this
    process may run on; a trial's CPUs are the least used ones, so disjoint while there are
    enough, and shared (never waited for) when not.
    """

    def __init__(self, gpus: str | Sequence[str] | None = None) -> None:
        self._given: tuple[str, ...] | None = None
        if gpus is not None:
            text = gpus if isinstance(gpus, str) else ",".join(str(g) for g in gpus)
            self._given = parse_device_list(text, "gpus")
        self._pools: dict[str, tuple[tuple[str, ...], str]] = {}
        self._held: dict[str, Allocation] = {}
        self._lock = threading.Lock()

    def _pool(self, resource: str) -> tuple[tuple[str, ...], str]:
        """The pool of ``resource`` and where it came from (detected once)."""
        if resource not in self._pools:
            if self._given is not None:
                self._pools[resource] = (self._given, f"--gpus {','.join(self._given)}")
            else:
                self._pools[resource] = detect_devices(resource)
        return self._pools[resource]

    def check(self, request: ResourceRequest, where: str) -> None:
        """Refuse a request no free pool could ever meet."""
        with self._lock:
            for name, count in request.gpus.items():
                pool, source = self._pool(name)
                if count > len(pool):
                    raise LaunchError(
                        f"{where}: resources.limits.{name}: {count} is more than the"
                        f" {len(pool)} device(s) this machine offers ({source}); lower it, or"
                        " name the devices with --gpus (Python API: CUDA_VISIBLE_DEVICES)"
                    )

    def acquire(self, trial: str, request: ResourceRequest) -> Allocation | None:
        """Devices for ``trial``, or None while too few are free (try again later)."""
        with self._lock:
            if trial in self._held:
                raise LaunchError(
                    f"trial {trial!r} already holds devices {self._held[trial].to_json()}:"
                    " it was launched before; adopt() or find() it instead"
                )
            busy: dict[str, set[str]] = {}
            for held in self._held.values():
                for name, ids in held.devices.items():
                    busy.setdefault(name, set()).update(ids)
            devices = {}
            for name, count in request.gpus.items():
                if count == 0:
                    continue
                free = [d for d in self._pool(name)[0] if d not in busy.get(name, set())]
                if len(free) < count:
                    return None
                devices[name] = tuple(free[:count])
            allocation = Allocation(devices, self._cpus_for(request.cpus), request.cpus)
            self._held[trial] = allocation
            return allocation

    def hold(self, trial: str, allocation: Allocation) -> None:
        """Mark what an adopted trial holds (as recorded when it was launched)."""
        with self._lock:
            self._held[trial] = allocation

    def release(self, trial: str) -> None:
        with self._lock:
            self._held.pop(trial, None)

    def waiting_message(self, request: ResourceRequest) -> str:
        with self._lock:
            parts = []
            for name, count in request.gpus.items():
                pool = self._pool(name)[0]
                used = sum(len(a.devices.get(name, ())) for a in self._held.values())
                parts.append(f"{count} {name} (in use: {used} of {len(pool)})")
            return f"waiting for a free device: {', '.join(parts)}"

    def _cpus_for(self, count: int | None) -> tuple[int, ...] | None:
        if count is None or not hasattr(os, "sched_getaffinity"):
            return None
        available = sorted(os.sched_getaffinity(0))
        if count >= len(available):
            return None  # every CPU: no affinity to set
        load = dict.fromkeys(available, 0)
        for held in self._held.values():
            for cpu in held.cpus or ():
                if cpu in load:
                    load[cpu] += 1
        return tuple(sorted(sorted(available, key=lambda c: load[c])[:count]))
