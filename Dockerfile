# Serves Nautilus Workbench. Base image is a build argument so machines without a registry can
# use a local Python >= 3.12 image:  docker build --build-arg BASE_IMAGE=local/python3:x .
# Offline builds: put wheels in ./wheelhouse first (pip download -d wheelhouse -c constraints.txt .).
# The versions installed are the tested ones in constraints.txt.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WORKBENCH_STATE_DIR=/data

COPY . /src
RUN python3 -m venv /opt/venv \
    && if [ -d /src/wheelhouse ]; then \
         /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /src/wheelhouse \
           -c /src/constraints.txt "/src[postgres]"; \
       else \
         /opt/venv/bin/pip install --no-cache-dir -c /src/constraints.txt "/src[postgres]"; \
       fi \
    && mkdir -p /data \
    && rm -rf /src \
    && useradd --system --uid 10001 --home-dir /data workbench \
    && chown -R workbench /data

ENV PATH=/opt/venv/bin:$PATH
USER workbench
WORKDIR /data
VOLUME ["/data"]
EXPOSE 5006
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5006/api/v1/health/live', timeout=4)"
# Listening on every interface needs HTTPS (WORKBENCH_CERTFILE, WORKBENCH_KEYFILE) or the
# explicit WORKBENCH_INSECURE_HTTP=1 (TLS at a proxy in front); else the server refuses to start.
CMD ["nautilus-workbench", "serve", "--address", "0.0.0.0", "--port", "5006"]
