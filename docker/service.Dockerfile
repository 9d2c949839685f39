# PRISM's service: the API (`prism serve`), a worker (`prism worker`) or both (`prism up`).
#
#   docker build -f docker/service.Dockerfile -t prism:latest .
#   docker run -p 8000:8000 -v prism-data:/var/lib/prism \
#       -v /run/secrets/prism-token:/run/secrets/prism-token:ro \
#       -e PRISM_SHARED_TOKEN_FILE=/run/secrets/prism-token prism:latest
#
# Submitted code never runs in this container's own processes: the worker hands it to the
# sandbox backend. In a container the usual choices are PRISM_SANDBOX_BACKEND=broker (Platform
# places each job on a GPU node) or docker (each job in `prism-runtime`, see runtime.Dockerfile;
# mount the host's Docker socket and CLI). bubblewrap is installed for hosts that run this
# container privileged enough for user namespaces and cgroups, as `prism sandbox check` reports.
FROM python:3.11-slim

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/prism
COPY pyproject.toml README.md ./
COPY src ./src
COPY examples ./examples
# torch is pinned by pyproject.toml (2.13.0); the worker needs it only to stage the sandbox's runtime.
RUN pip install --no-cache-dir . && prism --version

ENV PRISM_DATA_DIR=/var/lib/prism \
    PRISM_LOG_FORMAT=json
RUN mkdir -p /var/lib/prism
VOLUME ["/var/lib/prism"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
ENTRYPOINT ["prism"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
