"""tuner's trial variables in a trial object that runs in a pod (tuner/controller/_trial_env.py)."""

from __future__ import annotations

from typing import Any

from tuner.controller._trial_env import pod_environment, with_container_env

ENV = {
    "KATIB_TRIAL_NAME": "exp-abc",
    "TUNER_DBMANAGER_ADDRESS": "tuner-dbmanager.tuner.svc:6789",
    "TUNER_TRIAL_TOKEN": "tok",
    "TUNER_DBMANAGER_TLS_CA": "/home/me/ca.pem",
    "OTHER": "from the template",
}


def test_a_cluster_address_and_token_go_to_the_pod_but_local_tls_files_do_not() -> None:
    assert pod_environment(ENV) == {
        "KATIB_TRIAL_NAME": "exp-abc",
        "TUNER_DBMANAGER_ADDRESS": "tuner-dbmanager.tuner.svc:6789",
        "TUNER_TRIAL_TOKEN": "tok",
    }


def test_a_loopback_dbmanager_is_out_of_a_pods_reach_so_only_the_name_goes() -> None:
    for address in ("127.0.0.1:4000", "localhost:4000", "[::1]:4000"):
        env = {**ENV, "TUNER_DBMANAGER_ADDRESS": address}
        assert pod_environment(env) == {"KATIB_TRIAL_NAME": "exp-abc"}


def pytorchjob() -> dict[str, Any]:
    def replica(value: str) -> dict[str, Any]:
        container = {"name": "pytorch", "env": [{"name": "KATIB_TRIAL_NAME", "value": value}]}
        return {"replicas": 1, "template": {"spec": {"containers": [container]}}}

    return {
        "kind": "PyTorchJob",
        "spec": {"pytorchReplicaSpecs": {"Worker": replica("w"), "Master": replica("m")}},
    }


def test_the_primary_container_gets_the_values_replacing_its_own_and_nothing_else_changes():
    manifest = pytorchjob()
    master = manifest["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    out, primary = with_container_env(manifest, master, {"KATIB_TRIAL_NAME": "exp-abc"})
    replicas = out["spec"]["pytorchReplicaSpecs"]
    assert primary is replicas["Master"]["template"]["spec"]["containers"][0]
    assert primary["env"] == [{"name": "KATIB_TRIAL_NAME", "value": "exp-abc"}]
    worker = replicas["Worker"]["template"]["spec"]["containers"][0]
    assert worker["env"] == [{"name": "KATIB_TRIAL_NAME", "value": "w"}]
    assert master["env"] == [{"name": "KATIB_TRIAL_NAME", "value": "m"}]  # input untouched


def test_a_container_outside_the_manifest_leaves_it_unchanged() -> None:
    manifest = pytorchjob()
    elsewhere = {"name": "pytorch"}
    out, primary = with_container_env(manifest, elsewhere, {"KATIB_TRIAL_NAME": "x"})
    assert out == pytorchjob() and primary is elsewhere
