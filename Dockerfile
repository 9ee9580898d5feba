# The code location image for the Kubernetes deployment (deploy/k8s): the webserver and daemon load it
# with `dagster code-server`, runs and steps execute in it (K8sRunLauncher, k8s_job_executor).
# Build from the repository root: docker build -t synth-pipeline:<version> .
# GPU nodes: build with --build-arg TORCH="torch==2.13.0 --index-url <your CUDA wheel index>"; the
# default is the CPU wheel the tests use. Intermediates on an object store need its fsspec driver:
# --build-arg STORAGE="s3fs==2026.9.0" for s3:// (a PVC path needs none).
FROM python:3.11-slim
ARG TORCH="torch==2.13.0"
ARG STORAGE=""
# SYNTH_RUN_CONFIG: the step pods' run config (GPU, memory, shared storage) that every run the schedules
# and the file sensor start carries (assets/operations.py: deployment_run_config).
ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 SYNTH_EXECUTOR=k8s SYNTH_PROGRESS=0 \
    DAGSTER_HOME=/opt/dagster/home SYNTH_RUN_CONFIG=/opt/synth-pipeline/deploy/k8s/run_config.yaml
WORKDIR /opt/synth-pipeline
COPY requirements.lock pyproject.toml ./
RUN pip install ${TORCH} && pip install -r requirements.lock && if [ -n "${STORAGE}" ]; then pip install ${STORAGE}; fi
COPY synth_pipeline ./synth_pipeline
COPY assets ./assets
COPY resources ./resources
COPY catalogue.yaml workspace.yaml ./
COPY deploy/k8s/run_config.yaml ./deploy/k8s/
RUN pip install --no-deps . && mkdir -p "$DAGSTER_HOME" && useradd --uid 10001 synth && chown -R synth "$DAGSTER_HOME"
COPY deploy/k8s/dagster.yaml $DAGSTER_HOME/dagster.yaml
USER synth
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "synth_pipeline.definitions"]
