# The batch worker image of one domain: its function's code and pinned requirements, run as
#   python3.11 -m aimass.worker
# by an AWS Batch job (infra/constructs/batch_fallback.py). Build context: the repository root, e.g.
#   docker build -f infra/images/batch-worker.Dockerfile --build-arg DOMAIN=text -t aimass-text-batch .
#
# Not the function image: AWS Batch cannot replace an image's ENTRYPOINT, and the function image's is the
# Lambda runtime interface client. This one has none, so the job definition's command runs as given.
#
# Two flavours, chosen by build arguments (the CDK app passes them per domain):
# * GPU (the default): an NVIDIA CUDA runtime with cuDNN, and onnxruntime-gpu (ONNXRUNTIME_GPU, pinned: its
#   newest release on PyPI, which may trail the CPU package's, with the same dependencies) in place of the
#   function's onnxruntime;
# * CPU: BASE_IMAGE=public.ecr.aws/amazonlinux/amazonlinux:2023 ACCELERATOR=cpu, the function's own list
#   unchanged.
# Both bases are RHEL-like with Python 3.11 packaged (Rocky Linux 9, Amazon Linux 2023), so one recipe
# installs either; their glibc (2.34) takes the manylinux_2_28 wheels the function's list pins.
#
# No model is baked in: the job is told the model bucket (AIMASS_MODEL_BUCKET) and serves the version its
# alias points to, as the functions do, through the VPC's S3 endpoint.
#
# One plain "COPY <path in repo> <path>" per line: the CDK app reads them (with ${DOMAIN} filled in) to
# stage only these paths as the build context.

ARG BASE_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-rockylinux9
FROM ${BASE_IMAGE}
ARG DOMAIN
ARG ACCELERATOR=gpu
ARG ONNXRUNTIME_GPU=onnxruntime-gpu==1.31.1

RUN dnf install -y python3.11 python3.11-pip && dnf clean all

# The same layout as the function image (/var/task), so the shared core finds what it expects.
WORKDIR /var/task

# The function's fully pinned closure, installed with --no-deps as the function image does, with the
# ONNX Runtime package swapped for this flavour's.
COPY functions/${DOMAIN}/requirements.txt /var/task/requirements.txt
RUN if [ "${ACCELERATOR}" = gpu ]; then sed -i "s/^onnxruntime==.*/${ONNXRUNTIME_GPU}/" /var/task/requirements.txt; fi && python3.11 -m pip install --no-cache-dir --no-deps -r /var/task/requirements.txt --target /var/task && rm /var/task/requirements.txt

COPY layers/aimass /var/task/aimass
COPY functions/${DOMAIN}/aimass_${DOMAIN} /var/task/aimass_${DOMAIN}

# The job definition sets the rest of the environment (AIMASS_DOMAINS among it).
ENV PYTHONPATH=/var/task

CMD ["python3.11", "-m", "aimass.worker"]
