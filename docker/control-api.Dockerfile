# syntax=docker/dockerfile:1.7
# VoiceFlow control API: FastAPI registry, batch jobs, auth (`voiceflow api`, port 8000).
# Runtime deps only (the `api` extra): PostgreSQL via VOICEFLOW_DATABASE_URL, Redis via VOICEFLOW_REDIS_URL.
# In-cluster the operator trains; an embedded registry runs `voiceflow train|export` itself, so
# deploy/compose.yaml builds this image with EXTRAS=api,train (CPU wheels only, from TORCH_INDEX_URL).
# Build from the repository root:  docker build -f docker/control-api.Dockerfile -t voiceflow/control-api .
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
COPY control_api ./control_api
COPY operator ./operator
ARG EXTRAS=api
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_EXTRA_INDEX_URL=${TORCH_INDEX_URL}
RUN pip install --editable ".[${EXTRAS}]"

FROM ${PYTHON_IMAGE} AS runtime
ARG APP_UID=10001
# Owner of the code under /app: root (read-only to the app user) in released images; the Tiltfile
# passes the app uid so live_update can write synced files.
ARG APP_FILES_OWNER=0
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VOICEFLOW_STATE_DIR=/var/lib/voiceflow
RUN groupadd --system --gid ${APP_UID} voiceflow \
 && useradd --system --uid ${APP_UID} --gid ${APP_UID} --home-dir /home/voiceflow --create-home \
      --shell /usr/sbin/nologin voiceflow \
 && install -d -o ${APP_UID} -g ${APP_UID} -m 0750 /var/lib/voiceflow
VOLUME ["/var/lib/voiceflow"]
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder --chown=${APP_FILES_OWNER}:0 /app /app
WORKDIR /app
USER ${APP_UID}:${APP_UID}
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)"]
ENTRYPOINT ["voiceflow"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
