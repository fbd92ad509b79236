"""One model domain as a container-image Lambda function."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import FunctionConfig
from infra.constructs.image_function import ImageFunction

# Where the Dockerfiles put the model store inside the image (${LAMBDA_TASK_ROOT}/model_store).
IMAGE_MODEL_STORE = "/var/task/model_store"
# Where files fetched from the model bucket are cached: /tmp is the only writable path in Lambda, and it
# survives between invocations of one execution environment (sized by the function's ephemeral storage).
LAMBDA_CACHE_DIR = "/tmp/aimass-cache"


class DomainFunction(ImageFunction):
    """A model domain's FastAPI app (via Mangum) in a container-image Lambda function.

    The image is built from ``dockerfile`` with the repository root as context, sized by
    ``settings`` (the domain's function.toml), and told where its models are and how many threads
    inference may use.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain: str,
        repo_root: Path,
        dockerfile: str,
        settings: FunctionConfig,
        log_retention: logs.RetentionDays,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        # Lambda allocates CPU in proportion to memory (1 vCPU at 1,769 MB); inference is CPU-bound, so
        # memory is chosen for the cores and ONNX Runtime's intra-op thread count is set to match
        # (AIMASS_INTRA_OP_THREADS), never oversubscribing them. The timeout is at most API Gateway's 29 s
        # integration timeout (FunctionConfig checks it): past it the caller already has a 504, and a longer
        # timeout would keep computing (and billing) for nobody. x86_64 is what the bench numbers were measured
        # on (and what the Docker-free payload assembler installs wheels for); arm64 (Graviton, cheaper per
        # GB-second) is a configuration switch once it has been benchmarked.
        super().__init__(
            scope,
            construct_id,
            repo_root=repo_root,
            dockerfile=dockerfile,
            settings=settings,
            log_retention=log_retention,
            description=f"AI Mass {domain} domain: FastAPI app behind API Gateway",
            role_description=f"AI Mass {domain} function",
            environment={
                "AIMASS_MODEL_STORE": IMAGE_MODEL_STORE,
                "AIMASS_DOMAINS": json.dumps([domain]),
                "AIMASS_INTRA_OP_THREADS": str(settings.intra_op_threads),
                "AIMASS_CACHE_DIR": LAMBDA_CACHE_DIR,
                **(environment or {}),
            },
        )
        self.domain = domain
