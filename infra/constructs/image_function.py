"""A container-image Lambda function built from one of the checkout's Dockerfiles: the domains' and the authorizer's."""

from __future__ import annotations

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
from infra.constructs.provisioned import provisioned_alias
from infra.nag import acknowledge

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
    # Operator tools (CLI, quantization, payload assembly): never in an image, and a COPY of them fails.
    "tools",
    ".cache",
    # Build outputs, but for the console's bundle (make console), which the front function's image serves; an
    # exception ("!") applies only to the images whose Dockerfile copies it (build_context_exclude).
    "build/*",
    "!build/console",
    "**/__pycache__",
    "**/*.pyc",
    # Model build scaffolding (models/*/build.py): .build.lock, .build-* work dirs, .old-* swaps.
    "model_store/**/.*",
)

_COPY = re.compile(r"^COPY\s+(?P<src>\S+)\s+(?P<dest>\S+)\s*$")
_FROM = re.compile(r"^FROM\s+(?P<base>\S+)(?:\s+AS\s+(?P<name>\S+))?\s*$", re.IGNORECASE)
# The Lambda stage of every function's Dockerfile (``FROM <base image> AS function``): what the functions run.
# Docker builds the last stage when none is named, and a domain's last stage is its long-lived server
# (``FROM function AS server``), so each image asset names this one.
LAMBDA_STAGE = "function"

_PLATFORMS: Mapping[str, tuple[lambda_.Architecture, ecr_assets.Platform]] = {
    "x86_64": (lambda_.Architecture.X86_64, ecr_assets.Platform.LINUX_AMD64),
    "arm64": (lambda_.Architecture.ARM_64, ecr_assets.Platform.LINUX_ARM64),
}


def dockerfile_copy_sources(dockerfile: Path, target: str | None = None) -> tuple[str, ...]:
    """The repository paths a Dockerfile COPYs (one plain ``COPY <src> <dest>`` per line): every stage's, or
    those of the stages ``target`` is built from (itself and each earlier stage it is ``FROM``).

    A later stage's sources stay out of an earlier target's build context, so editing them changes neither its
    asset hash nor the function.
    """
    stages: dict[str | None, tuple[str, list[str]]] = {}  # name -> (base, sources)
    current: list[str] = []
    sources: list[str] = []
    for number, line in enumerate(dockerfile.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        start = _FROM.match(stripped)
        if start is not None:
            current = []
            stages[start["name"]] = (start["base"], current)
            continue
        if not stripped.upper().startswith("COPY"):
            continue
        match = _COPY.match(stripped)
        if match is None or match["src"].startswith(("--", "[")):
            raise ValueError(f"{dockerfile}:{number}: expected 'COPY <src> <dest>', got {stripped!r}")
        current.append(match["src"].rstrip("/"))
        sources.append(match["src"].rstrip("/"))
    if target is not None:
        if target not in stages:
            raise ValueError(
                f"{dockerfile}: no stage named {target!r}; name the Lambda stage 'FROM <base image> AS {target}'"
            )
        sources = []
        stage: str | None = target
        while stage in stages:
            base, copied = stages.pop(stage)
            sources[:0] = copied
            stage = base
    if not sources:
        raise ValueError(f"{dockerfile}: no COPY lines")
    return tuple(sources)


def build_context_exclude(dockerfile: str, copy_sources: Sequence[str]) -> list[str]:
    """Docker-style ignore patterns that stage only what the Dockerfile uses.

    Everything is excluded, then the Dockerfile and its COPY sources are let back in, then the
    junk patterns are applied again (the last matching pattern wins). The image asset's hash is
    computed over the staged files, so edits elsewhere in the repository (docs, infra, other
    functions) do not produce a new image or a function update.
    """
    # An exception in the excludes lets a path back in for the images that copy it only: staged elsewhere, it
    # would change their asset hash (and redeploy them) whenever it changes.
    excludes = [pattern for pattern in CONTEXT_EXCLUDE if not pattern.startswith("!") or pattern[1:] in copy_sources]
    return ["*", f"!{dockerfile}", *(f"!{src}" for src in copy_sources), *excludes]


class ImageFunction(Construct):
    """A container-image Lambda function with its own log group, role and X-Ray tracing.

    The image is built from ``dockerfile``'s Lambda stage (``LAMBDA_STAGE``) with the repository root as context,
    sized by ``settings`` (its function.toml). The role may write only to the function's log group (and send
    traces); the composing stack grants access to other resources.

    ``cmd`` replaces the image's CMD (another handler in the same image: the image is built and stored once);
    ``timeout`` replaces ``settings.timeout_s`` for a function no API request waits on.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repo_root: Path,
        dockerfile: str,
        settings: FunctionConfig,
        log_retention: logs.RetentionDays,
        description: str,
        role_description: str,
        environment: Mapping[str, str],
        cmd: Sequence[str] | None = None,
        timeout: Duration | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.settings = settings
        lambda_architecture, image_platform = _PLATFORMS[settings.architecture]

        copy_sources = dockerfile_copy_sources(repo_root / dockerfile, LAMBDA_STAGE)
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention)

        # Our own role instead of the AWSLambdaBasicExecutionRole managed policy: the function
        # may write only to its own log group (X-Ray permissions are added by `tracing`).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=role_description,
        )
        self.log_group.grant_write(self.role)

        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            description=description,
            code=lambda_.DockerImageCode.from_image_asset(
                directory=str(repo_root),
                file=dockerfile,
                exclude=build_context_exclude(dockerfile, copy_sources),
                ignore_mode=IgnoreMode.DOCKER,
                # The image must match the function's instruction set.
                platform=image_platform,
                # The Lambda stage, not the Dockerfile's last (the long-lived server built on it).
                target=LAMBDA_STAGE,
                cmd=list(cmd) if cmd is not None else None,
            ),
            memory_size=settings.memory_mb,
            timeout=timeout or Duration.seconds(settings.timeout_s),
            architecture=lambda_architecture,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=settings.reserved_concurrency,
            environment=dict(environment),
        )
        # What API Gateway invokes: the function, or its alias 'live' where environments are provisioned.
        self.invocable: lambda_.IFunction = self.function
        if settings.provisioned_concurrency is not None:
            self.invocable = provisioned_alias(self, self.function, settings.provisioned_concurrency)
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
