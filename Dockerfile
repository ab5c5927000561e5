# syntax=docker/dockerfile:1
# Calgate's container image, the one the Helm chart runs (helm/calgate, image.repository).
#
#   docker build -t ghcr.io/calgate/calgate:0.1.0 .
#   docker push ghcr.io/calgate/calgate:0.1.0
#
# Two stages: `build` installs Calgate and its dependencies into a virtualenv with the
# compilers at hand (for any dependency without a wheel); the final stage copies only that
# virtualenv onto a clean python:slim and runs as the unprivileged user 10001.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# Unpinned on purpose: the compilers follow the base image's Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/calgate
WORKDIR /src

# The dependencies first, in a layer of their own: a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && /opt/calgate/bin/pip install -r requirements.txt

# Then Calgate itself, as a wheel: code, templates, static files and migrations.
COPY README.md ./
COPY gateway ./gateway
COPY oauth_server ./oauth_server
COPY providers ./providers
RUN /opt/calgate/bin/pip install --no-deps . \
    && /opt/calgate/bin/python -c "import gateway.app, oauth_server, providers" \
    && /opt/calgate/bin/pip uninstall -y pip


FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="Calgate" \
      org.opencontainers.image.description="Self-hosted calendar-integration gateway with a Cronofy-compatible API" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 calgate \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/calgate \
               --shell /usr/sbin/nologin calgate \
    && mkdir -p /var/lib/calgate \
    && chown 10001:10001 /var/lib/calgate
COPY --from=build /opt/calgate /opt/calgate

# The bytecode was compiled at install time, so a read-only root filesystem costs nothing.
# CALGATE_HOST: listen on the container's interfaces. CALGATE_PUBLIC_URL suits a local
# `docker run -p 8080:8080`; anything else sets its own https origin (the chart does).
ENV PATH=/opt/calgate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CALGATE_HOST=0.0.0.0 \
    CALGATE_PORT=8080 \
    CALGATE_PUBLIC_URL=http://127.0.0.1:8080 \
    CALGATE_DATA_DIR=/var/lib/calgate

USER 10001:10001
WORKDIR /var/lib/calgate
EXPOSE 8080
# No HEALTHCHECK: the same image runs `calgate worker` and `calgate migrate`, which serve
# no HTTP. Kubernetes uses the chart's probes (/healthz, /readyz).
ENTRYPOINT ["calgate"]
CMD ["serve"]
