"""The batch fallback: AWS Batch runs batches' shards, on GPU instances or on Fargate, scaling to zero between them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Aws, Duration, IgnoreMode, RemovalPolicy, Size
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from aimass.contract import WORKER_MODULE
from infra.config import BATCH_WORKER_DOCKERFILE, ConfigError
from infra.constructs.batch_network import BatchNetwork
from infra.constructs.image_function import build_context_exclude, dockerfile_copy_sources
from infra.nag import acknowledge

# The command of every job: the worker runs one shard (AWS_BATCH_JOB_ARRAY_INDEX) of the batch the submission
# names (AIMASS_BATCH_ID, AIMASS_BATCH_TENANT).
WORKER_COMMAND: tuple[str, ...] = ("python3.11", "-m", WORKER_MODULE)

# A GPU job takes a whole xlarge GPU instance (4 vCPUs, 16 GiB, one GPU): the GPU runs the model, the vCPUs
# tokenise and decode beside it. 14 GiB leaves the ECS agent and the OS their share of 16 GiB.
GPU_JOB_VCPUS = 4
GPU_JOB_MEMORY_MIB = 14 * 1024
# A CPU job on Fargate: two vCPUs (ONNX Runtime's intra-op threads follow) and 4 GiB, a valid Fargate pair that
# holds the CPU domains' models (rl, speech: tens of MB) and a chunk of results many times over.
CPU_JOB_VCPUS = 2
CPU_JOB_MEMORY_MIB = 4 * 1024
# One shard (aimass:batchShardLines lines) takes minutes; a stuck attempt is stopped, and retried, after this.
ATTEMPT_TIMEOUT = Duration.hours(1)
# Attempts per shard: a Spot reclaim or a failed image pull is retried up to twice; a shard restarts at its first
# unwritten chunk, and a shard's result is counted once however often it runs.
ATTEMPTS = 3

# The worker image's flavours (infra/images/batch-worker.Dockerfile's build arguments); GPU is its default.
CPU_BASE_IMAGE = "public.ecr.aws/amazonlinux/amazonlinux:2023"
_CPU_BUILD_ARGS = {"BASE_IMAGE": CPU_BASE_IMAGE, "ACCELERATOR": "cpu"}

_FARGATE_ARCHITECTURES = {"x86_64": ecs.CpuArchitecture.X86_64, "arm64": ecs.CpuArchitecture.ARM64}
_PLATFORMS = {"x86_64": ecr_assets.Platform.LINUX_AMD64, "arm64": ecr_assets.Platform.LINUX_ARM64}


@dataclass(frozen=True)
class BatchDomain:
    """How one domain's shards run: on the GPU environment or on Fargate (with its function's instruction set)."""

    domain: str
    gpu: bool
    architecture: str  # "x86_64" or "arm64"; GPU instances are x86_64 whatever this says
    environment: Mapping[str, str] = field(default_factory=dict)  # the domain's own, beside every job's


@dataclass(frozen=True)
class BatchJob:
    """One domain's job definition, the queue it is submitted to and the role its containers run as."""

    domain: str
    definition: batch.EcsJobDefinition
    queue: batch.JobQueue
    role: iam.Role


class BatchFallback(Construct):
    """Where batches' shards run on AWS: a job queue per compute environment and a job definition per domain.

    * GPU: a managed EC2 compute environment of ``gpu_instance_types`` (ECS-optimised Amazon Linux 2023 with the
      NVIDIA driver), On-Demand or Spot, from 0 to ``max_vcpus``; its jobs ask for one GPU.
    * CPU: Fargate, from 0 to ``max_vcpus``, for the domains where a GPU does not pay for itself.

    Each job runs its domain's worker image (``infra/images/batch-worker.Dockerfile``: the function's code and
    requirements, with onnxruntime-gpu on a CUDA base for GPU domains) with the worker command, under its own job
    role. The composing stack grants each job role what a worker reads and writes; the execution role shared by
    every job only pulls the images and writes the jobs' logs.

    ``targets_json`` is what the front function submits shards with (AIMASS_BATCH_TARGETS), ``grant_submit`` lets a
    role submit and stop them, and ``route_job_state_changes`` sends every finished job to a function.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repo_root: Path,
        domains: Sequence[BatchDomain],
        gpu_instance_types: Sequence[str],
        spot: bool,
        max_vcpus: int,
        log_retention: logs.RetentionDays,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        if not domains:
            raise ValueError("expected at least one domain to run batches for")
        self.network = BatchNetwork(self, "Network", log_retention=log_retention)
        self.log_group = logs.LogGroup(self, "JobLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        # Shared by every job: ECS uses it to pull the image and create the log streams, before the job role applies.
        self.execution_role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="AI Mass batch jobs' execution: pulls the worker images, writes the jobs' logs",
        )
        acknowledge(
            self.execution_role,
            "IAM5[Resource::*]",
            "ecr:GetAuthorizationToken, which every image pull starts with, accepts no resource but '*'; the "
            "image layers are read from the worker images' repository only.",
        )

        self.queues: dict[str, batch.JobQueue] = {}
        if any(spec.gpu for spec in domains):
            self.queues["gpu"] = self._queue("Gpu", self._gpu_environment(gpu_instance_types, spot, max_vcpus))
        if not all(spec.gpu for spec in domains):
            self.queues["cpu"] = self._queue(
                "Cpu",
                batch.FargateComputeEnvironment(
                    self,
                    "CpuEnvironment",
                    vpc=self.network.vpc,
                    vpc_subnets=self.network.subnets,
                    security_groups=[self.network.security_group],
                    maxv_cpus=max_vcpus,
                ),
            )

        self._submitters = 0
        self.jobs: dict[str, BatchJob] = {
            spec.domain: self._job(repo_root, spec, environment) for spec in sorted(domains, key=lambda s: s.domain)
        }

    def _gpu_environment(
        self, instance_types: Sequence[str], spot: bool, max_vcpus: int
    ) -> batch.ManagedEc2EcsComputeEnvironment:
        environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "GpuEnvironment",
            vpc=self.network.vpc,
            vpc_subnets=self.network.subnets,
            security_groups=[self.network.security_group],
            instance_types=[ec2.InstanceType(name) for name in instance_types],
            # Only the listed GPU types, never Batch's "optimal" CPU families.
            use_optimal_instance_classes=False,
            images=[batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2023_NVIDIA)],
            # Nothing runs, nothing is paid: instances start for queued jobs and stop when the queue is empty.
            minv_cpus=0,
            maxv_cpus=max_vcpus,
            spot=spot,
            # Spot: the cheapest pools least likely to be reclaimed; On-Demand: the listed types in order of cost.
            allocation_strategy=(
                batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
                if spot
                else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE
            ),
            update_to_latest_image_version=True,
        )
        acknowledge(
            environment,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role]",
            "The instance role of a Batch EC2 compute environment must let the ECS agent register the instance, "
            "poll for tasks and report their state: AWS's managed policy is the documented set of those calls, kept "
            "current by AWS as the agent changes. Jobs never use it; each runs under its own job role.",
        )
        return environment

    def _queue(self, name: str, environment: batch.IComputeEnvironment) -> batch.JobQueue:
        return batch.JobQueue(
            self,
            f"{name}Queue",
            compute_environments=[batch.OrderedComputeEnvironment(compute_environment=environment, order=1)],
            priority=1,
        )

    def _job(self, repo_root: Path, spec: BatchDomain, environment: Mapping[str, str]) -> BatchJob:
        name = "".join(part.capitalize() for part in spec.domain.split("_"))
        role = iam.Role(
            self,
            f"{name}JobRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description=f"AI Mass {spec.domain} batch worker",
        )
        image = ecs.ContainerImage.from_docker_image_asset(self._image(repo_root, spec, name))
        vcpus = GPU_JOB_VCPUS if spec.gpu else CPU_JOB_VCPUS
        job_environment = {
            **environment,
            **spec.environment,
            "AIMASS_DOMAINS": json.dumps([spec.domain]),
            "AIMASS_INTRA_OP_THREADS": str(vcpus),
            # The container's own disk; models fetched from the bucket are cached there for the job's life.
            "AIMASS_CACHE_DIR": "/tmp/aimass-cache",
            # A GPU job whose image lost its CUDA provider fails to load its model, loudly, rather than running
            # on the instance's few CPUs at a GPU's price.
            "AIMASS_ACCELERATOR": "cuda" if spec.gpu else "cpu",
        }
        logging = ecs.LogDriver.aws_logs(stream_prefix=spec.domain, log_group=self.log_group)
        container: batch.IEcsContainerDefinition
        if spec.gpu:
            container = batch.EcsEc2ContainerDefinition(
                self,
                f"{name}Container",
                image=image,
                command=list(WORKER_COMMAND),
                cpu=GPU_JOB_VCPUS,
                memory=Size.mebibytes(GPU_JOB_MEMORY_MIB),
                gpu=1,
                environment=job_environment,
                job_role=role,
                execution_role=self.execution_role,
                logging=logging,
            )
        else:
            container = batch.EcsFargateContainerDefinition(
                self,
                f"{name}Container",
                image=image,
                command=list(WORKER_COMMAND),
                cpu=CPU_JOB_VCPUS,
                memory=Size.mebibytes(CPU_JOB_MEMORY_MIB),
                fargate_cpu_architecture=_FARGATE_ARCHITECTURES[spec.architecture],
                fargate_operating_system_family=ecs.OperatingSystemFamily.LINUX,
                # Public subnets without a NAT: the task's public address is how it reaches ECR and the AWS APIs.
                assign_public_ip=True,
                environment=job_environment,
                job_role=role,
                execution_role=self.execution_role,
                logging=logging,
            )
        definition = batch.EcsJobDefinition(
            self,
            f"{name}Job",
            container=container,
            timeout=ATTEMPT_TIMEOUT,
            retry_attempts=ATTEMPTS,
            # First match wins. A reclaimed Spot instance or a failed image pull is the platform's fault: retry.
            # Anything else is the shard's own failure (the worker already retried its AWS calls): end it, so the
            # batch fails now rather than after paying for the same failure three times.
            retry_strategies=[
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.SPOT_INSTANCE_RECLAIMED),
                batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.CANNOT_PULL_CONTAINER),
                batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom(on_reason="*")),
            ],
            # Tags given at submission reach the ECS tasks (and their cost allocation).
            propagate_tags=True,
        )
        return BatchJob(
            domain=spec.domain,
            definition=definition,
            queue=self.queues["gpu" if spec.gpu else "cpu"],
            role=role,
        )

    def _image(self, repo_root: Path, spec: BatchDomain, name: str) -> ecr_assets.DockerImageAsset:
        dockerfile = repo_root / BATCH_WORKER_DOCKERFILE
        if not dockerfile.is_file():
            raise ConfigError(f"{BATCH_WORKER_DOCKERFILE}: missing; every domain's batch worker image is built from it")
        sources = [source.replace("${DOMAIN}", spec.domain) for source in dockerfile_copy_sources(dockerfile)]
        return ecr_assets.DockerImageAsset(
            self,
            f"{name}Image",
            directory=str(repo_root),
            file=BATCH_WORKER_DOCKERFILE,
            build_args={"DOMAIN": spec.domain, **({} if spec.gpu else _CPU_BUILD_ARGS)},
            exclude=build_context_exclude(BATCH_WORKER_DOCKERFILE, sources),
            ignore_mode=IgnoreMode.DOCKER,
            # GPU instances (g5, g6) are x86_64; Fargate runs the function's instruction set.
            platform=_PLATFORMS["x86_64" if spec.gpu else spec.architecture],
        )

    def targets_json(self) -> str:
        """AIMASS_BATCH_TARGETS: per domain, the queue (ARN) and the job definition (ARN, with its revision)."""
        return json.dumps(
            {
                domain: {"queue": job.queue.job_queue_arn, "job_definition": job.definition.job_definition_arn}
                for domain, job in self.jobs.items()
            }
        )

    def grant_submit(self, role: iam.IRole) -> None:
        """Let ``role`` submit shards (array jobs) of every domain's job definition to its queue, tag them, look
        them up, and cancel or terminate them (a cancelled batch)."""
        self._submitters += 1
        policy = iam.Policy(
            self,
            f"SubmitPolicy{self._submitters}",
            statements=[
                iam.PolicyStatement(
                    actions=["batch:SubmitJob"],
                    resources=sorted({queue.job_queue_arn for queue in self.queues.values()})
                    + [job.definition.job_definition_arn for job in self.jobs.values()],
                ),
                iam.PolicyStatement(
                    actions=["batch:CancelJob", "batch:TerminateJob", "batch:TagResource"],
                    resources=[f"arn:{Aws.PARTITION}:batch:{Aws.REGION}:{Aws.ACCOUNT_ID}:job/*"],
                ),
                iam.PolicyStatement(actions=["batch:DescribeJobs"], resources=["*"]),
            ],
        )
        policy.attach_to_role(role)
        acknowledge(
            policy,
            "IAM5[Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job/*]",
            "Job ids are made by AWS Batch at submission, so cancelling, terminating or tagging a batch's job "
            "names no job known at deploy time; the jobs are this account's and region's only.",
        )
        acknowledge(
            policy,
            "IAM5[Resource::*]",
            "batch:DescribeJobs supports no resource-level permission: '*' is the only resource it accepts.",
        )

    def route_job_state_changes(self, function: lambda_.IFunction) -> events.Rule:
        """Send every job of these queues that SUCCEEDED or FAILED, the whole EventBridge event, to ``function``."""
        rule = events.Rule(
            self,
            "JobStateChanges",
            description="AI Mass batch jobs that succeeded or failed, to the function that finishes their batches",
            event_pattern=events.EventPattern(
                source=["aws.batch"],
                detail_type=["Batch Job State Change"],
                detail={
                    "jobQueue": sorted({queue.job_queue_arn for queue in self.queues.values()}),
                    "status": ["SUCCEEDED", "FAILED"],
                },
            ),
        )
        # EventBridge delivers asynchronously; Lambda retries a failed invocation twice on its own.
        rule.add_target(targets.LambdaFunction(function, retry_attempts=8, max_event_age=Duration.hours(24)))
        return rule
