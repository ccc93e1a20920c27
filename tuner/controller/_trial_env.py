"""What a trial object's manifest says to the executor: tuner's trial variables in its
primary container, for a trial that runs elsewhere (the kubernetes executor: a pod gets no
environment from the controller's process, so the variables a trial reads, its name, its
report token, the DBManager's cluster address, go into the manifest), and its deadline."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tuner.metrics import DBMANAGER_ADDRESS_ENV, TRIAL_NAME_ENV
from tuner.tokens import TRIAL_TOKEN_ENV

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def pod_environment(env: Mapping[str, str]) -> dict[str, str]:
    """Of a trial's environment (``trial_command``), the variables that mean something in a
    pod: its name, and the DBManager's address and the report token when that address is
    not the controller's loopback (``tuner controller --dbmanager-advertise-address``). TLS
    file paths are the controller's own files: a pod mounts its certificate Secret itself
    (docs/security.md)."""
    out = {TRIAL_NAME_ENV: env[TRIAL_NAME_ENV]} if TRIAL_NAME_ENV in env else {}
    address = env.get(DBMANAGER_ADDRESS_ENV, "")
    host = address.rpartition(":")[0]
    if address and host not in _LOOPBACK_HOSTS:
        out[DBMANAGER_ADDRESS_ENV] = address
        if TRIAL_TOKEN_ENV in env:
            out[TRIAL_TOKEN_ENV] = env[TRIAL_TOKEN_ENV]
    return out


def with_container_env(
    manifest: Mapping[str, Any], container: Mapping[str, Any], values: Mapping[str, str]
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """A copy of ``manifest`` whose ``container`` (an object inside it, found by identity)
    sets ``values`` in its ``env``, replacing entries of the same names (as the local
    executor's variables override the container's), and that container in the copy.
    Unchanged (and ``container`` itself) when the container is not inside the manifest."""
    path = path_to(manifest, container)
    if path is None:
        return dict(manifest), container
    out = copy.deepcopy(dict(manifest))
    node: Any = out
    for key in path:
        node = node[key]
    if not values:
        return out, node
    kept = [
        e for e in node.get("env") or [] if not (isinstance(e, Mapping) and e.get("name") in values)
    ]
    node["env"] = [*kept, *({"name": k, "value": v} for k, v in values.items())]
    return out, node


def path_to(node: Any, target: Any, path: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """The keys leading from ``node`` to the object ``target`` (by identity), or None."""
    if node is target:
        return path
    if isinstance(node, Mapping):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return None
    for key, child in items:
        found = path_to(child, target, (*path, key))
        if found is not None:
            return found
    return None


def active_deadline(manifest: Mapping[str, Any]) -> float | None:
    """``activeDeadlineSeconds`` of a Job (``spec``) or its pod template; the smaller wins."""
    spec = manifest.get("spec") or {}
    pod = ((spec.get("template") or {}).get("spec")) or {}
    found = [
        v
        for v in (spec.get("activeDeadlineSeconds"), pod.get("activeDeadlineSeconds"))
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
    ]
    return float(min(found)) if found else None
