# rackconnect-exporter container image.
#
#   docker build -t rackconnect-exporter \
#     --build-arg VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run -p 10054:10054 -e RACKSPACE_USERNAME=... -e RACKSPACE_API_KEY=... rackconnect-exporter
#
# Stage 1 builds the wheel; stage 2 installs it into a virtual environment (the wheel is
# bind-mounted from stage 1, so no layer keeps it) and runs it as an unprivileged user and
# group, both 10054. tests/test_deploy.py lints this file and replays its install steps.
#
# VERSION only sets the image's version label: the version itself lives in pyproject.toml.
# Without it the label says "unknown"; a VERSION that is not the package's fails the build.
# REVISION is the source revision: the revision label of rackconnect_exporter_build_info
# and of the image; "unknown" without it (the build context has no .git).

FROM python:3.11-slim AS build
ARG REVISION
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY exporter/ exporter/
RUN RACKCONNECT_EXPORTER_REVISION="${REVISION}" \
    pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ARG VERSION
ARG REVISION
LABEL org.opencontainers.image.title="rackconnect-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Rackspace RackConnect v2.0 and Managed Operations automation status" \
      org.opencontainers.image.version="${VERSION:-unknown}" \
      org.opencontainers.image.revision="${REVISION:-unknown}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/example/rackconnect-exporter" \
      org.opencontainers.image.documentation="https://github.com/example/rackconnect-exporter/blob/main/docs/deployment.md"
# MALLOC_ARENA_MAX=2: glibc's per-thread heaps held 5 to 7 MiB more at 10,000 servers
# (docs/scale.md).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2
# The group first, with the user's id: a --system group would get an id below 1000.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /wheels/*.whl \
    && installed="$(/opt/venv/bin/rackconnect-exporter --version)" \
    && if [ -n "${VERSION}" ] && [ "${installed}" != "rackconnect-exporter ${VERSION}" ]; then \
         echo "VERSION=${VERSION} but the package is ${installed}" >&2; exit 1; fi \
    && groupadd --gid 10054 rackconnect \
    && useradd --uid 10054 --gid 10054 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin --no-log-init rackconnect
USER 10054:10054
EXPOSE 10054
# healthcheck reads --web.listen-address and --web.config.file from the exporter's own
# command line (process 1), so TLS, basic auth and other ports need no change here; with
# basic auth, set RACKCONNECT_HEALTHCHECK_PASSWORD_FILE (see docs/deployment.md, Health checks).
HEALTHCHECK --interval=30s --timeout=6s --start-period=10s --retries=3 \
    CMD ["rackconnect-exporter", "healthcheck"]
ENTRYPOINT ["rackconnect-exporter"]
