# syntax=docker/dockerfile:1.7
# VoiceFlow pipelines: training, ONNX export + INT8, evaluation and batch diarization steps
# (`voiceflow train|export|batch`), run as Argo Workflow / Job steps. The only image with torch
# (the `train` extra pins torch==2.13.0; the CPU wheel index keeps CUDA out of the image).
# Build from the repository root:  docker build -f docker/pipelines.Dockerfile -t voiceflow/pipelines .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependency layer first (cached until pyproject.toml changes), then the code as an editable install
# rooted at /app so `tilt up` can live-sync Python files into the running container.
COPY pyproject.toml README.md ./
COPY voiceflow ./voiceflow
COPY voiceflow_cli ./voiceflow_cli
COPY voiceflow_edge ./voiceflow_edge
COPY inference_pod ./inference_pod
COPY pipelines ./pipelines
COPY voiceflow_workflows ./voiceflow_workflows
COPY control_api ./control_api
COPY operator ./operator
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_EXTRA_INDEX_URL=${TORCH_INDEX_URL}
RUN pip install --editable ".[train]"

FROM ${PYTHON_IMAGE} AS runtime
ARG APP_UID=10001
# Owner of the code under /app: root (read-only to the app user) in released images; the Tiltfile
# passes the app uid so live_update can write synced files.
ARG APP_FILES_OWNER=0
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/voiceflow
RUN groupadd --system --gid ${APP_UID} voiceflow \
 && useradd --system --uid ${APP_UID} --gid ${APP_UID} --home-dir /home/voiceflow --create-home \
      --shell /usr/sbin/nologin voiceflow
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=${APP_FILES_OWNER}:0 /app /app
WORKDIR /app
USER ${APP_UID}:${APP_UID}
# Batch/one-shot steps: no long-running endpoint to probe.
HEALTHCHECK NONE
ENTRYPOINT ["voiceflow"]
CMD ["--help"]
