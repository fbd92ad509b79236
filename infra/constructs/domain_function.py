"""One model domain as a container-image Lambda function."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration, IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import FunctionConfig
from infra.nag import acknowledge

# Where the Dockerfiles put the model store inside the image (${LAMBDA_TASK_ROOT}/model_store).
IMAGE_MODEL_STORE = "/var/task/model_store"
# Where files fetched from the model bucket are cached: /tmp is the only writable path in Lambda, and it
# survives between invocations of one execution environment (sized by the function's ephemeral storage).
LAMBDA_CACHE_DIR = "/tmp/aimass-cache"

# Kept out of the build context even when inside a COPY source. Mirrors the root .dockerignore,
# which plain `docker build` uses (tests/infra checks the two agree).
CONTEXT_EXCLUDE: tuple[str, ...] = (
    ".git",
    ".venv",
    "node_modules",
    "cdk.out",
    "tests",
    "bench",
    "templates",
    ".cache",
    "build",
    "**/__pycache__",
    "**/*.pyc",
    # Model build scaffolding (models/*/build.py): .build.lock, .build-* work dirs, .old-* swaps.
    "model_store/**/.*",
)

_COPY = re.compile(r"^COPY\s+(?P<src>\S+)\s+(?P<dest>\S+)\s*$")

_PLATFORMS: Mapping[str, tuple[lambda_.Architecture, ecr_assets.Platform]] = {
    "x86_64": (lambda_.Architecture.X86_64, ecr_assets.Platform.LINUX_AMD64),
    "arm64": (lambda_.Architecture.ARM_64, ecr_assets.Platform.LINUX_ARM64),
}


def dockerfile_copy_sources(dockerfile: Path) -> tuple[str, ...]:
    """The repository paths a Dockerfile COPYs (one plain ``COPY <src> <dest>`` per line)."""
    sources: list[str] = []
    for number, line in enumerate(dockerfile.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped.upper().startswith("COPY"):
            continue
        match = _COPY.match(stripped)
        if match is None or match["src"].startswith(("--", "[")):
            raise ValueError(f"{dockerfile}:{number}: expected 'COPY <src> <dest>', got {stripped!r}")
        sources.append(match["src"].rstrip("/"))
    if not sources:
        raise ValueError(f"{dockerfile}: no COPY lines")
    return tuple(sources)


def build_context_exclude(dockerfile: str, copy_sources: Sequence[str]) -> list[str]:
    """Docker-style ignore patterns that stage only what the Dockerfile uses.

    Everything is excluded, then the Dockerfile and its COPY sources are let back in, then the
    junk patterns are applied again (the last matching pattern wins). The image asset's hash is
    computed over the staged files, so edits elsewhere in the repository (docs, infra, other
    domains) do not produce a new image or a function update.
    """
    return ["*", f"!{dockerfile}", *(f"!{src}" for src in copy_sources), *CONTEXT_EXCLUDE]


class DomainFunction(Construct):
    """A model domain's FastAPI app (via Mangum) in a container-image Lambda function.

    The image is built from ``dockerfile`` with the repository root as context, sized by
    ``settings`` (the domain's function.toml). Its log group, role and X-Ray tracing are set up here;
    the composing stack grants access to other resources.
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
        super().__init__(scope, construct_id)
        self.domain = domain
        self.settings = settings
        lambda_architecture, image_platform = _PLATFORMS[settings.architecture]

        copy_sources = dockerfile_copy_sources(repo_root / dockerfile)
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention)

        # Our own role instead of the AWSLambdaBasicExecutionRole managed policy: the function
        # may write only to its own log group (X-Ray permissions are added by `tracing`).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"AI Mass {domain} function",
        )
        self.log_group.grant_write(self.role)

        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            description=f"AI Mass {domain} domain: FastAPI app behind API Gateway",
            code=lambda_.DockerImageCode.from_image_asset(
                directory=str(repo_root),
                file=dockerfile,
                exclude=build_context_exclude(dockerfile, copy_sources),
                ignore_mode=IgnoreMode.DOCKER,
                # The image must match the function's instruction set.
                platform=image_platform,
            ),
            # Lambda allocates CPU in proportion to memory (1 vCPU at 1,769 MB); inference is
            # CPU-bound, so memory is chosen for the cores and ONNX Runtime's intra-op thread
            # count is set to match (AIMASS_INTRA_OP_THREADS), never oversubscribing them.
            memory_size=settings.memory_mb,
            # At most API Gateway's 29 s integration timeout (FunctionConfig checks it): past it the
            # caller already has a 504, and a longer timeout would keep computing (and billing) for nobody.
            timeout=Duration.seconds(settings.timeout_s),
            # x86_64 is what the bench numbers were measured on (and what the Docker-free payload
            # assembler installs wheels for); arm64 (Graviton, cheaper per GB-second) is a
            # configuration switch once it has been benchmarked.
            architecture=lambda_architecture,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=settings.reserved_concurrency,
            environment={
                "AIMASS_MODEL_STORE": IMAGE_MODEL_STORE,
                "AIMASS_DOMAINS": json.dumps([domain]),
                "AIMASS_INTRA_OP_THREADS": str(settings.intra_op_threads),
                "AIMASS_CACHE_DIR": LAMBDA_CACHE_DIR,
                **(environment or {}),
            },
        )
        cfn_function = self.function.node.default_child
        if isinstance(cfn_function, lambda_.CfnFunction):
            # CDK makes the function depend on its role and the role's policy (so it never runs
            # without its grants); the role half is already implied by GetAtt (cfn-lint W3005).
            cfn_function.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})

        # The role's DefaultPolicy is created on first grant; acknowledge on the role so it
        # covers the policy whenever it appears.
        acknowledge(
            self.role,
            "IAM5[Resource::*]",
            "X-Ray's PutTraceSegments and PutTelemetryRecords do not support resource-level "
            "permissions; '*' is the only resource they accept (added by active tracing).",
        )
