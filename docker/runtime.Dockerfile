# The image the Docker sandbox backend runs each evaluation phase in (PRISM_DOCKER_IMAGE,
# default prism-runtime:latest):
#
#   docker build -f docker/runtime.Dockerfile -t prism-runtime:latest .
#
# The backend starts it as `docker run --rm --network none --read-only --cap-drop ALL
# --security-opt no-new-privileges --user 65534:65534 ... prism-runtime:latest python3 -m
# prism.evaluation.harness`, with the submission and the phase's data mounted read-only. So the
# image holds: python3 on PATH, torch 2.13.0 and PRISM's harness (the same package version as
# the worker), importable by an unprivileged user from a read-only root. Nothing else: no
# compiler, no network tools, no secrets.
FROM python:3.11-slim

WORKDIR /opt/prism
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . \
    && python3 -c "import torch, prism.evaluation.harness, prism.evaluation.model_proc; assert torch.__version__.startswith('2.13.0')" \
    && rm -rf /root/.cache

USER 65534:65534
WORKDIR /
CMD ["python3", "-m", "prism.evaluation.harness"]
