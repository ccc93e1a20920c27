"""The request kubeflow-katib 0.19's ``kubeflow.katib.report_metrics`` sends, as a trial
script. The SDK cannot be installed beside tuner (it requires protobuf<5, tuner >= 6.31),
so the tests send the same message over raw gRPC with tuner's wire-identical protos:
``ReportObservationLog(trial_name=$KATIB_TRIAL_NAME, observation_log=ObservationLog(
metric_logs=[MetricLog(time_stamp=<UTC, whole seconds, "%Y-%m-%dT%H:%M:%SZ">,
metric=Metric(name, str(value)))]))`` on an insecure channel, timeout 120 s, with no
metadata (no token, no step, no report id). Left out: the SDK first reads the pod's
namespace from the service account file, used only in its error message."""

from __future__ import annotations

TRIAL = r"""
import os, sys
from datetime import datetime, timezone

import grpc

from tuner.protos import api_pb2, api_pb2_grpc


def report_metrics(metrics, db_manager_address="katib-db-manager.kubeflow:6789", timeout=120):
    name = os.getenv("KATIB_TRIAL_NAME")
    if name is None:
        raise ValueError("The Trial name is not passed to environment variables")
    channel = grpc.insecure_channel(db_manager_address)
    for value in metrics.values():
        float(value)
    client = api_pb2_grpc.DBManagerStub(channel)
    timestamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    client.ReportObservationLog(
        request=api_pb2.ReportObservationLogRequest(
            trial_name=name,
            observation_log=api_pb2.ObservationLog(
                metric_logs=[
                    api_pb2.MetricLog(
                        time_stamp=timestamp,
                        metric=api_pb2.Metric(name=metric, value=str(value)),
                    )
                    for metric, value in metrics.items()
                ]
            ),
        ),
        timeout=timeout,
    )


x = float(sys.argv[1])
# As docs/controller.md tells a local trial: the SDK's db_manager_address from tuner's variable.
address = os.environ["TUNER_DBMANAGER_ADDRESS"]
print(f"reporting to {address}", flush=True)
report_metrics({"loss": x, "accuracy": 1 - x}, db_manager_address=address)
"""
"""Run as ``python trial.py X``: reports ``loss=X`` and ``accuracy=1-X`` once, as the SDK,
after printing ``reporting to HOST:PORT``."""
