#!/usr/bin/env bash
# Regenerate tuner/protos/api_pb2{.py,.pyi,_grpc.py} from proto/api.proto.
#
# The source directory is mapped to the virtual import path "tuner/protos", so protoc
# names the files tuner/protos/api_pb2*.py and the gRPC module imports its messages as
# `from tuner.protos import api_pb2`: no post-processing, and output is deterministic.
# grpcio-tools is pinned in pyproject (dev extra) so the gencode matches the supported
# protobuf runtimes; run with PYTHON pointing at the project venv.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$PYTHON" -m grpc_tools.protoc \
    --proto_path=tuner/protos=proto \
    --python_out=. \
    --pyi_out=. \
    --grpc_python_out=. \
    tuner/protos/api.proto
