# syntax=docker/dockerfile:1
# One image for tuner on Kubernetes: the controller (`tuner controller`), the suggestion
# server (`tuner suggestion-server`), the dashboard (`tuner dashboard`) and trial helpers (`python3 /opt/tuner/examples/...`).
#   docker build -t tuner:0.1.0 .
# It runs as an unprivileged user (uid 10001) and needs no writable root filesystem.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tuner ./tuner
COPY suggestion ./suggestion
# A virtual environment, so the final stage copies one directory and nothing of pip's cache.
RUN python -m venv /opt/tuner \
    && /opt/tuner/bin/pip install ".[kubernetes,postgres,dashboard]"

FROM python:3.11.11-slim-bookworm
ENV PATH=/opt/tuner/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 tuner \
    && useradd --system --uid 10001 --gid tuner --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin tuner
COPY --from=build /opt/tuner /opt/tuner
# The examples' trial scripts, so that an Experiment can use this image for its trials too.
COPY examples /opt/tuner/examples
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["tuner"]
CMD ["--help"]
