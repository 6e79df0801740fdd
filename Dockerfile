# syntax=docker/dockerfile:1
# The Pynomaly image: one image for the embedded engine (`pynomaly serve`), the Ray engine's head and worker pods
# (KubeRay RayService) and the AnomalyDetector operator (`kopf run`). See README "Deploy on Kubernetes".
#   docker build -t ghcr.io/pynomaly/pynomaly:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install the pinned dependencies (pyproject.toml) and Pynomaly into a virtual environment -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/pynomaly
WORKDIR /src
COPY pyproject.toml README.md ./
COPY services ./services
COPY operators ./operators
# torch==2.13.0 from PyTorch's CPU index (2.13.0+cpu satisfies the pin; PyPI's Linux wheel pulls in CUDA), the rest
# from PyPI, every version as pinned in pyproject.toml.
RUN /opt/pynomaly/bin/pip install --extra-index-url https://download.pytorch.org/whl/cpu ".[ray,s3,operator]" \
    && /opt/pynomaly/bin/pip check

# --- runtime: the environment, a non-root user, nothing else ----------------------------------------------------
FROM ${PYTHON_IMAGE}
# wget: KubeRay's injected probes on Ray pods call it (`wget … /api/local_raylet_healthz`). The store directory
# belongs to the user, so a named volume mounted there (docker run -v NAME:/var/lib/pynomaly) starts writable.
RUN apt-get update && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 pynomaly \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin pynomaly \
    && install -d -o 10001 -g 10001 /var/lib/pynomaly/store
COPY --from=build /opt/pynomaly /opt/pynomaly
# A read-only root file system: everything written goes to mounted volumes (the model store, batch outputs) and
# /tmp (Ray's session directory, numba's cache); the chart mounts an emptyDir there.
ENV PATH=/opt/pynomaly/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/tmp/numba \
    MPLCONFIGDIR=/tmp/matplotlib \
    RAY_USAGE_STATS_ENABLED=0
USER 10001:10001
WORKDIR /tmp
# gRPC (Train/Detect/Explain, OIP v2, health), REST (OIP v2 over HTTP), Prometheus metrics.
EXPOSE 50051 8000 9090
ENTRYPOINT ["pynomaly", "serve"]
# Inside a pod every interface: the pod's network is the boundary (TLS and tokens come with issue 13).
CMD ["--listen", "0.0.0.0:50051", "--http-listen", "0.0.0.0:8000", "--metrics-port", "9090", \
     "--store", "/var/lib/pynomaly/store"]
