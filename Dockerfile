# syntax=docker/dockerfile:1
# One image for both processes: `mpc-node` (the StatefulSet) and `mpc-coordinator`
# (the Deployment); statefulset/ sets the command. Build: docker build -t mpc-cluster:0.1.0 .
# Pin it by digest (python:3.11-slim-bookworm@sha256:...) for a reproducible production image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build stage: compilers and headers live only here
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libgmp-dev libmpfr-dev libmpc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY mpcnode ./mpcnode
COPY coordinator ./coordinator
COPY protos ./protos
RUN python -m venv /opt/mpc \
 && /opt/mpc/bin/pip install --no-cache-dir --disable-pip-version-check . \
 && /opt/mpc/bin/python -m compileall -q /opt/mpc

# ---- final stage: the virtualenv and a non-root user, nothing else
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 65532 mpc \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin mpc
COPY --from=build /opt/mpc /opt/mpc
ENV PATH=/opt/mpc/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 7000 7001 9100
CMD ["mpc-node", "--config", "/etc/mpc/config/node.json"]
