"""Generated protobuf and gRPC modules for the Katib-compatible ``api.v1.beta1`` API.

Regenerate with ``scripts/gen_proto.sh`` (``make proto``); never edit ``api_pb2*`` by hand.
"""

from __future__ import annotations

# The gencode comes from grpcio-tools 1.78.0 (protobuf 6.31 gencode). It loads silently on
# protobuf 6.x and 7.x runtimes (checked on 7.34.0 and 7.36.2: no "older gencode" warning), so
# no warning filter is needed here.
from tuner.protos import api_pb2, api_pb2_grpc

__all__ = ["api_pb2", "api_pb2_grpc"]
