# syntax=docker/dockerfile:1
#
# hanmo images. One Dockerfile, three final targets:
#
#   docker build --target api        -t hanmo-api .         # FastAPI front end: `s3` extra only
#   docker build --target worker     -t hanmo-worker .      # GPU worker: `cuda` + `s3` extras
#   docker build --target worker-cpu -t hanmo-worker-cpu .  # CPU worker: `worker` + `s3` extras
#
# Every image carries the `s3` extra (s3fs), so HANMO_ARTIFACT_ROOT and HANMO_REGISTER_ROOTS
# may be s3://bucket/prefix URLs (HANMO_S3_* settings or botocore's AWS_* variables).
#
# docker-compose.yml builds all three (the CPU worker in its `cpu` profile); deploy/kubernetes
# runs them. BuildKit is required (RUN --mount, RUN <<heredoc); it is
# the default builder since Docker Engine 23.
#
# Layout inside every image:
#   /opt/venv      the virtualenv (on PATH), with hanmo and hanmo-client installed as wheels
#                  (not editable): the registry's migrations travel inside the hanmo wheel
#                  (app/registry/migrations), so `hanmo migrate` needs no source tree.
#   /opt/hanmo/models        the shipped model repository (models/<name>/<version>/...)
#   /var/lib/hanmo           HANMO_HOME, owned by the non-root user `hanmo` (uid/gid 10001,
#                  numeric in USER so that runAsNonRoot-style checks can verify it);
#   /var/lib/hanmo/artifacts HANMO_ARTIFACT_ROOT in docker-compose (a shared volume). The same
#                  uid in every image, so api, migrate and workers can share that volume.
#
# No torch in any image. TorchScript artifacts (card format "torchscript") need torch in
# the worker that serves them, and only there (app/runtime/sessions.py imports it lazily).
# To serve them, extend the worker image with the torch build for its CUDA version, e.g.
#
#   FROM hanmo-worker
#   RUN pip install --no-cache-dir "torch==2.13.*" --index-url https://download.pytorch.org/whl/cu130
#
# (several GB; the `training` extra is not needed for serving.)

# ---------------------------------------------------------------------------------------------
# Build arguments
# ---------------------------------------------------------------------------------------------
# The api image and the wheel builder.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# The worker's base: CUDA runtime + cuDNN, matched to onnxruntime-gpu.
#   onnxruntime-gpu >= 1.27 on PyPI is built for CUDA 13.x + cuDNN 9 (its CUDA provider links
#   libcublas.so.13 / libcudart.so.13; 1.31.1 reports cuda_version 13.0), which is what
#   `onnxruntime-gpu>=1.18` in pyproject.toml resolves to today. CUDA 13 needs an NVIDIA
#   driver >= 580 on the host.
#   onnxruntime-gpu 1.19 - 1.26 on PyPI are CUDA 12.x + cuDNN 9. For hosts with an older
#   driver (>= 525), build with both of:
#     --build-arg CUDA_IMAGE=nvidia/cuda:12.9.1-cudnn-runtime-ubuntu22.04
#     --build-arg ONNXRUNTIME_GPU="onnxruntime-gpu>=1.19,<1.27"
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu22.04
# Empty: onnxruntime-gpu at constraints.txt's pin. A requirement here replaces that pin.
ARG ONNXRUNTIME_GPU=""

# ---------------------------------------------------------------------------------------------
# wheels: every wheel both images install, resolved and downloaded once, at the versions
# constraints.txt pins (`make constraints` writes it; `make` installs from it too). Only the
# dependency files and hanmo-client's source are copied, so this layer is rebuilt only when
# they change. Every third-party dependency publishes manylinux (glibc <= 2.28) wheels for
# cp311, so the same wheels install on Debian bookworm (api) and on Ubuntu 22.04 with
# deadsnakes' CPython 3.11 (worker). --only-binary keeps it that way: a dependency that ever
# ships only an sdist fails here, loudly, instead of being compiled against this stage's glibc.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS wheels
ARG ONNXRUNTIME_GPU
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /build
COPY pyproject.toml constraints.txt ./
COPY clients/python ./clients/python
# requirements-api.txt        = hanmo's [project.dependencies], hanmo-client aside (built
#                               below), + the `s3` extra (s3fs: artifacts in S3) + the `otel`
#                               extra (traces by OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT)
# requirements-worker.txt     = the above + the `cuda` extra (onnxruntime-gpu)
# requirements-worker-cpu.txt = the above + the `worker` extra (onnxruntime, CPU only)
RUN python - <<'EOF'
import os
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
api = [r for r in project["dependencies"] if not r.startswith("hanmo-client")]
api += extras["s3"] + extras["otel"]
worker = api + extras["cuda"]
worker_cpu = api + extras["worker"]
os.makedirs("/wheels", exist_ok=True)
for name, requirements in (("api", api), ("worker", worker), ("worker-cpu", worker_cpu)):
    with open(f"/wheels/requirements-{name}.txt", "w") as out:
        out.write("\n".join(requirements) + "\n")
pins = open("constraints.txt").read().splitlines()
override = os.environ["ONNXRUNTIME_GPU"]
if override:
    pins = [p for p in pins if not p.startswith("onnxruntime-gpu==")] + [override]
with open("/wheels/constraints.txt", "w") as out:
    out.write("\n".join(pins) + "\n")
EOF

# setuptools and wheel build hanmo in the final stages, which install with --no-index from here.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip wheel --only-binary=:all: --wheel-dir /wheels \
        --constraint /wheels/constraints.txt \
        --requirement /wheels/requirements-worker.txt \
        --requirement /wheels/requirements-worker-cpu.txt \
        "setuptools>=77" wheel \
    && pip wheel --no-deps --no-index --find-links=/wheels --wheel-dir /wheels ./clients/python

# ---------------------------------------------------------------------------------------------
# api: python:3.11-slim, the `s3` and `otel` extras only (no onnxruntime, no torch).
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS api
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HANMO_HOME=/var/lib/hanmo
RUN groupadd --system --gid 10001 hanmo \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/hanmo --no-create-home \
        --shell /usr/sbin/nologin hanmo \
    && install -d -o hanmo -g hanmo /var/lib/hanmo /var/lib/hanmo/artifacts \
    && python -m venv /opt/venv
# Dependencies first (cached across source changes); the wheels are bind-mounted, not copied.
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels --constraint /wheels/constraints.txt \
        --requirement /wheels/requirements-api.txt hanmo-client
WORKDIR /opt/hanmo
# The source: .dockerignore lets through only pyproject.toml, README.md, LICENSE, app/ and
# models/ (training/ is not part of the distribution). hanmo is installed as a wheel; the
# source is removed after, and models/ stays as the repository `migrate` registers.
COPY . .
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    mkdir -p models \
    && pip install --no-index --find-links=/wheels --constraint /wheels/constraints.txt ".[s3]" \
    && rm -rf app build hanmo.egg-info \
    && python -c "from app.registry.db import MIGRATIONS as m; assert (m / 'env.py').is_file(), m" \
    && python -c "import s3fs"
USER 10001:10001
EXPOSE 8000
# curl is not in the slim image; urlopen raises (exit 1) on a refused connection or non-2xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=4)"]
# --host is explicit: HANMO_HOST defaults to 127.0.0.1, unreachable from outside a container.
CMD ["hanmo", "api", "--host", "0.0.0.0", "--port", "8000"]

# ---------------------------------------------------------------------------------------------
# worker-cpu: python:3.11-slim with the `worker` and `s3` extras (onnxruntime for CPU, no CUDA):
# the CPU worker of docker-compose's `cpu` profile and of deploy/kubernetes (base and cpu
# overlay), and the image of the Kubernetes migrate Job (registering checks each graph with ONNX
# Runtime on CPU). The same layout and user as the api image; a fraction of the CUDA image's size.
# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS worker-cpu
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HANMO_HOME=/var/lib/hanmo \
    HANMO_DEVICE=cpu
RUN groupadd --system --gid 10001 hanmo \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/hanmo --no-create-home \
        --shell /usr/sbin/nologin hanmo \
    && install -d -o hanmo -g hanmo /var/lib/hanmo /var/lib/hanmo/artifacts \
    && python -m venv /opt/venv
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels --constraint /wheels/constraints.txt \
        --requirement /wheels/requirements-worker-cpu.txt hanmo-client
WORKDIR /opt/hanmo
COPY . .
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    mkdir -p models \
    && pip install --no-index --find-links=/wheels --constraint /wheels/constraints.txt ".[worker,s3]" \
    && rm -rf app build hanmo.egg-info \
    && python -c "from app.registry.db import MIGRATIONS as m; assert (m / 'env.py').is_file(), m" \
    && python -c "import s3fs" \
    && python -c "import onnxruntime as ort; assert 'CPUExecutionProvider' in ort.get_available_providers(), ort.get_available_providers()"
USER 10001:10001
# Prometheus metrics of the worker process (HANMO_WORKER_METRICS_PORT; 0, the default, is off).
EXPOSE 9100
CMD ["hanmo", "worker"]

# ---------------------------------------------------------------------------------------------
# deadsnakes: the apt source and signing key for the deadsnakes PPA, fetched here so that the
# worker image needs neither curl nor gnupg. Python 3.11 on Ubuntu 22.04: jammy's own
# `python3.11` (universe) is 3.11.0~rc1, a release candidate whose fixes come only through
# ESM; the deadsnakes PPA publishes current CPython 3.11.x for jammy (python3.11,
# python3.11-venv). The key is checked against its published fingerprint.
# ---------------------------------------------------------------------------------------------
FROM ubuntu:22.04 AS deadsnakes
ARG DEBIAN_FRONTEND=noninteractive
ARG DEADSNAKES_KEY=F23C5A6CF475977595C89F51BA6932366A755776
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Unpinned apt packages (DL3008) here and in `worker`: the archives keep only the current
# build of each package (deadsnakes included), so a pin would break the build at the next
# security update; the base image tags pin the distribution.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /out/etc/apt/keyrings /out/etc/apt/sources.list.d \
    && curl -fsSL "https://keyserver.ubuntu.com/pks/lookup?op=get&search=0x${DEADSNAKES_KEY}" \
        | gpg --dearmor -o /out/etc/apt/keyrings/deadsnakes.gpg \
    && gpg --show-keys --with-colons /out/etc/apt/keyrings/deadsnakes.gpg \
        | grep "^fpr:::::::::${DEADSNAKES_KEY}:" >/dev/null \
    && chmod 0644 /out/etc/apt/keyrings/deadsnakes.gpg \
    && echo "deb [signed-by=/etc/apt/keyrings/deadsnakes.gpg] https://ppa.launchpadcontent.net/deadsnakes/ppa/ubuntu jammy main" \
        > /out/etc/apt/sources.list.d/deadsnakes.list

# ---------------------------------------------------------------------------------------------
# worker: CUDA runtime + cuDNN (Ubuntu 22.04), CPython 3.11 from deadsnakes, the `cuda` and
# `s3` extras (onnxruntime-gpu, s3fs). `hanmo worker --device cuda:0` selects the CUDA execution
# provider; without a GPU the same image runs on CPU (`--device cpu`, or HANMO_DEVICE=cpu with
# the command `hanmo worker`).
# ---------------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS worker
ARG DEBIAN_FRONTEND=noninteractive
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HANMO_HOME=/var/lib/hanmo \
    HANMO_DEVICE=cuda:0
# The nvidia/cuda base images ship ca-certificates, which the https PPA source needs.
COPY --from=deadsnakes /out/ /
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 hanmo \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/hanmo --no-create-home \
        --shell /usr/sbin/nologin hanmo \
    && install -d -o hanmo -g hanmo /var/lib/hanmo /var/lib/hanmo/artifacts \
    && python3.11 -m venv /opt/venv
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels \
        --constraint /wheels/constraints.txt --requirement /wheels/requirements-worker.txt \
        hanmo-client
WORKDIR /opt/hanmo
COPY . .
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    mkdir -p models \
    && pip install --no-index --find-links=/wheels --constraint /wheels/constraints.txt ".[cuda,s3]" \
    && rm -rf app build hanmo.egg-info \
    && python -c "from app.registry.db import MIGRATIONS as m; assert (m / 'env.py').is_file(), m" \
    && python -c "import s3fs" \
    && python -c "import onnxruntime as ort; assert 'CUDAExecutionProvider' in ort.get_available_providers(), ort.get_available_providers()"
USER 10001:10001
# HANMO_DEVICE (cuda:0 above) applies when the command is plain `hanmo worker`; the --device
# flag below wins over it. One process per GPU: `--device cuda:0,cuda:1`, `--replicas N`.
CMD ["hanmo", "worker", "--device", "cuda:0"]
