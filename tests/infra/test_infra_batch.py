"""The batch fallback: the VPC, AWS Batch compute environments, queues and job definitions, the jobs table, the job
state rule and the batch events function, and what the front function is told and allowed."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from aimass.contract import BATCH_EVENTS_HANDLER, JOBS_BATCH_INDEX, JOBS_TABLE, WORKER_MODULE
from infra.config import BATCH_WORKER_DOCKERFILE, ServingConfig
from infra.constructs.batch_fallback import ATTEMPTS, WORKER_COMMAND
from infra.constructs.files_bucket import BATCH_WORK_PREFIX
from infra.constructs.image_function import dockerfile_copy_sources
from infra.stacks.serving_stack import BATCH_EVENTS_LOGICAL_ID, TEXT_FUNCTION_LOGICAL_ID, function_logical_id
from tests.infra.infra_synth import DOCKERFILE_DOMAINS, REPO_ROOT, Synthesized

DEFAULTS = ServingConfig()
GPU_DOMAINS = sorted(set(DEFAULTS.batch_gpu_domains) & set(DOCKERFILE_DOMAINS))
CPU_DOMAINS = sorted(set(DOCKERFILE_DOMAINS) - set(GPU_DOMAINS))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _one(synthesized: Synthesized, cfn_type: str, path_part: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (key, resource)
        for key, resource in synthesized.resources_of_type(cfn_type).items()
        if path_part in resource["Metadata"]["aws:cdk:path"]
    ]
    return found


def _job_definitions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Domain -> the properties of its job definition (named Batch/<Domain>Job)."""
    found: dict[str, dict[str, Any]] = {}
    for resource in synthesized.resources_of_type("AWS::Batch::JobDefinition").values():
        match = re.search(r"/Batch/(\w+)Job/Resource$", resource["Metadata"]["aws:cdk:path"])
        assert match, resource["Metadata"]["aws:cdk:path"]
        found[match[1].lower()] = resource["Properties"]
    return found


def _variables(definition: dict[str, Any]) -> dict[str, Any]:
    return {item["Name"]: item["Value"] for item in definition["ContainerProperties"]["Environment"]}


def _queue_of(synthesized: Synthesized, kind: str) -> str:
    """The logical id of the GPU or CPU job queue."""
    key, _ = _one(synthesized, "AWS::Batch::JobQueue", f"/Batch/{kind}Queue/")
    return key


# --- network ------------------------------------------------------------------------------------------


def test_vpc_has_public_subnets_no_nat_flow_logs_and_gateway_endpoints(synthesized: Synthesized) -> None:
    synthesized.template.resource_count_is("AWS::EC2::VPC", 1)
    synthesized.template.resource_count_is("AWS::EC2::NatGateway", 0)
    subnets = synthesized.resources_of_type("AWS::EC2::Subnet").values()
    assert len(subnets) == 2
    assert all(subnet["Properties"]["MapPublicIpOnLaunch"] for subnet in subnets)
    (flow_log,) = synthesized.resources_of_type("AWS::EC2::FlowLog").values()
    assert flow_log["Properties"]["TrafficType"] == "ALL"
    services = sorted(
        json.dumps(endpoint["Properties"]["ServiceName"])
        for endpoint in synthesized.resources_of_type("AWS::EC2::VPCEndpoint").values()
    )
    assert len(services) == 2
    assert "dynamodb" in services[0] and ".s3" in services[1]
    for endpoint in synthesized.resources_of_type("AWS::EC2::VPCEndpoint").values():
        assert endpoint["Properties"]["VpcEndpointType"] == "Gateway"


def test_workers_admit_no_inbound_traffic(synthesized: Synthesized) -> None:
    _, group = _one(synthesized, "AWS::EC2::SecurityGroup", "/Batch/Network/Workers/")
    assert "SecurityGroupIngress" not in group["Properties"]
    synthesized.template.resource_count_is("AWS::EC2::SecurityGroupIngress", 0)


# --- compute environments and queues -------------------------------------------------------------------


def test_gpu_environment_scales_to_zero_on_the_configured_instances(synthesized: Synthesized) -> None:
    _, environment = _one(synthesized, "AWS::Batch::ComputeEnvironment", "/Batch/GpuEnvironment/")
    resources = environment["Properties"]["ComputeResources"]
    assert resources["MinvCpus"] == 0
    assert resources["MaxvCpus"] == DEFAULTS.batch_max_vcpus
    assert resources["InstanceTypes"] == DEFAULTS.batch_gpu_instance_types
    assert resources["Type"] == "SPOT"
    assert resources["AllocationStrategy"] == "SPOT_PRICE_CAPACITY_OPTIMIZED"
    assert resources["Ec2Configuration"] == [{"ImageType": "ECS_AL2023_NVIDIA"}]


def test_cpu_environment_is_fargate(synthesized: Synthesized) -> None:
    _, environment = _one(synthesized, "AWS::Batch::ComputeEnvironment", "/Batch/CpuEnvironment/")
    resources = environment["Properties"]["ComputeResources"]
    assert resources["Type"] == "FARGATE"
    assert resources["MaxvCpus"] == DEFAULTS.batch_max_vcpus


def test_one_queue_per_environment(synthesized: Synthesized) -> None:
    queues = synthesized.resources_of_type("AWS::Batch::JobQueue")
    environments = synthesized.resources_of_type("AWS::Batch::ComputeEnvironment")
    assert len(queues) == len(environments) == 2
    for kind in ("Gpu", "Cpu"):
        queue = queues[_queue_of(synthesized, kind)]["Properties"]
        (order,) = queue["ComputeEnvironmentOrder"]
        assert f"Batch{kind}Environment" in json.dumps(order["ComputeEnvironment"])


def test_context_sets_instances_spot_and_size(tmp_path_factory: pytest.TempPathFactory) -> None:
    # GIVEN other instance types, no Spot and a smaller ceiling, as `cdk synth -c` passes them (strings)
    config = ServingConfig.from_context(
        {
            "aimass:batchGpuInstanceTypes": '["g6.2xlarge"]',
            "aimass:batchSpot": "false",
            "aimass:batchMaxVcpus": "16",
            "aimass:batchGpuDomains": '["vision"]',
        }
    )
    # THEN they are read as the environment needs them
    assert config.batch_gpu_instance_types == ["g6.2xlarge"]
    assert config.batch_spot is False
    assert config.batch_max_vcpus == 16
    assert config.batch_gpu_domains == ["vision"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("aimass:batchGpuInstanceTypes", '["g6 xlarge"]'),
        ("aimass:batchGpuInstanceTypes", "[]"),
        ("aimass:batchSpot", "yes"),
        ("aimass:batchMaxVcpus", True),
        ("aimass:batchMaxVcpus", 2),
        ("aimass:batchGpuDomains", '["Text"]'),
    ],
)
def test_bad_batch_context_names_its_key(key: str, value: Any) -> None:
    from infra.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape(key)):
        ServingConfig.from_context({key: value})


def test_on_demand_gpu_environment(fake_synthesized: Synthesized) -> None:
    # The made-up checkout's context leaves the batch keys alone and has no GPU domain but text.
    _, environment = _one(fake_synthesized, "AWS::Batch::ComputeEnvironment", "/Batch/GpuEnvironment/")
    assert environment["Properties"]["ComputeResources"]["MinvCpus"] == 0
    definitions = _job_definitions(fake_synthesized)
    assert set(definitions) == {"text", "toy"}
    assert definitions["text"]["PlatformCapabilities"] == ["EC2"]
    assert definitions["toy"]["PlatformCapabilities"] == ["FARGATE"]


# --- job definitions -------------------------------------------------------------------------------------


def test_one_job_definition_per_domain(synthesized: Synthesized) -> None:
    assert sorted(_job_definitions(synthesized)) == DOCKERFILE_DOMAINS


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_job_runs_the_worker_with_retries_on_spot_reclaim(synthesized: Synthesized, domain: str) -> None:
    definition = _job_definitions(synthesized)[domain]
    container = definition["ContainerProperties"]
    assert container["Command"] == list(WORKER_COMMAND) == ["python3.11", "-m", WORKER_MODULE]
    strategy = definition["RetryStrategy"]
    assert strategy["Attempts"] == ATTEMPTS == 3
    assert strategy["EvaluateOnExit"][0] == {"Action": "RETRY", "OnStatusReason": "Host EC2*"}
    assert strategy["EvaluateOnExit"][-1] == {"Action": "EXIT", "OnReason": "*"}
    assert definition["Timeout"]["AttemptDurationSeconds"] > 0
    assert definition["PropagateTags"] is True
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    variables = _variables(definition)
    assert variables["AIMASS_DOMAINS"] == json.dumps([domain])
    assert variables["AIMASS_METERING"] == "dynamodb"
    assert variables["AIMASS_JOBS_TABLE"] == {"Ref": synthesized.output_ref("JobsTableName")}
    assert variables["AIMASS_FILES_BUCKET"] == {"Ref": synthesized.output_ref("FilesBucketName")}
    assert variables["AIMASS_MODEL_BUCKET"] == {"Ref": synthesized.output_ref("ModelBucketName")}
    for table in ("KeysTableName", "UsageTableName", "CountersTableName"):
        assert {"Ref": synthesized.output_ref(table)} in variables.values()
    requirements = {item["Type"]: int(item["Value"]) for item in container["ResourceRequirements"]}
    assert variables["AIMASS_INTRA_OP_THREADS"] == str(requirements["VCPU"])


@pytest.mark.parametrize("domain", GPU_DOMAINS)
def test_gpu_domains_ask_for_one_gpu(synthesized: Synthesized, domain: str) -> None:
    definition = _job_definitions(synthesized)[domain]
    requirements = {
        item["Type"]: int(item["Value"]) for item in definition["ContainerProperties"]["ResourceRequirements"]
    }
    assert requirements["GPU"] == 1
    # It fits the smallest instance of the default list (g6.xlarge / g5.xlarge: 4 vCPUs, 16 GiB).
    assert requirements["VCPU"] <= 4 and requirements["MEMORY"] < 16 * 1024
    assert definition["PlatformCapabilities"] == ["EC2"]


@pytest.mark.parametrize("domain", CPU_DOMAINS)
def test_cpu_domains_run_on_fargate(synthesized: Synthesized, domain: str) -> None:
    definition = _job_definitions(synthesized)[domain]
    container = definition["ContainerProperties"]
    requirements = {item["Type"]: item["Value"] for item in container["ResourceRequirements"]}
    assert "GPU" not in requirements
    assert definition["PlatformCapabilities"] == ["FARGATE"]
    # No NAT: the task's public address is its way out.
    assert container["NetworkConfiguration"] == {"AssignPublicIp": "ENABLED"}


def test_worker_images_are_built_per_domain_and_flavour(synthesized: Synthesized) -> None:
    assets = json.loads((synthesized.outdir / f"{synthesized.stack.stack_name}.assets.json").read_text("utf-8"))
    workers = [
        image["source"]
        for image in assets["dockerImages"].values()
        if image["source"]["dockerFile"] == BATCH_WORKER_DOCKERFILE
    ]
    by_domain = {source["dockerBuildArgs"]["DOMAIN"]: source for source in workers}
    assert sorted(by_domain) == DOCKERFILE_DOMAINS
    for domain, source in by_domain.items():
        arguments = source["dockerBuildArgs"]
        if domain in GPU_DOMAINS:
            # The Dockerfile's defaults: the CUDA base and onnxruntime-gpu.
            assert set(arguments) == {"DOMAIN"}
            assert source["platform"] == "linux/amd64"
        else:
            assert arguments["ACCELERATOR"] == "cpu"
            assert "amazonlinux" in arguments["BASE_IMAGE"]
        staged = synthesized.outdir / source["directory"]
        assert (staged / BATCH_WORKER_DOCKERFILE).is_file()
        assert (staged / f"functions/{domain}/requirements.txt").is_file()
        # Only this domain's code, and no model: the worker reads the model bucket.
        assert {path.name for path in (staged / "functions").iterdir()} == {domain}
        assert not (staged / "model_store").exists()


def test_worker_dockerfile_runs_the_worker_on_cuda_with_onnxruntime_gpu() -> None:
    text = (REPO_ROOT / BATCH_WORKER_DOCKERFILE).read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE_IMAGE=nvidia/cuda:\S+-cudnn-runtime-\S+$", text, re.MULTILINE)
    assert re.search(r"^ARG ONNXRUNTIME_GPU=onnxruntime-gpu==\d+\.\d+\.\d+$", text, re.MULTILINE)
    assert "ARG ACCELERATOR=gpu" in text
    assert not re.search(r"^ENTRYPOINT", text, re.MULTILINE)  # AWS Batch cannot replace one: the command runs as given
    assert f"CMD {json.dumps(list(WORKER_COMMAND))}" in text
    assert dockerfile_copy_sources(REPO_ROOT / BATCH_WORKER_DOCKERFILE) == (
        "functions/${DOMAIN}/requirements.txt",
        "layers/aimass",
        "functions/${DOMAIN}/aimass_${DOMAIN}",
    )
    for domain in DOCKERFILE_DOMAINS:
        assert (REPO_ROOT / f"functions/{domain}/aimass_{domain}").is_dir()
        assert re.search(r"^onnxruntime==", (REPO_ROOT / f"functions/{domain}/requirements.txt").read_text(), re.M)


# --- the jobs table ---------------------------------------------------------------------------------------


def test_jobs_table_follows_the_contract(synthesized: Synthesized) -> None:
    table = synthesized.resources[synthesized.output_ref("JobsTableName")]
    properties = table["Properties"]
    assert properties["KeySchema"] == [
        {"AttributeName": JOBS_TABLE.partition_key.name, "KeyType": "HASH"},
        {"AttributeName": JOBS_TABLE.sort_key.name if JOBS_TABLE.sort_key else "", "KeyType": "RANGE"},
    ]
    (index,) = properties["GlobalSecondaryIndexes"]
    assert index["IndexName"] == JOBS_BATCH_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": JOBS_TABLE.index(JOBS_BATCH_INDEX).partition_key.name, "KeyType": "HASH"}
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    definitions = {item["AttributeName"]: item["AttributeType"] for item in properties["AttributeDefinitions"]}
    assert definitions == {"tenant": "S", "sk": "S", "batch_id": "S"}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    assert properties["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


# --- the job state rule and the events function ------------------------------------------------------------


def test_rule_sends_finished_jobs_of_our_queues_to_the_events_function(synthesized: Synthesized) -> None:
    (rule,) = synthesized.resources_of_type("AWS::Events::Rule").values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.batch"]
    assert pattern["detail-type"] == ["Batch Job State Change"]
    assert pattern["detail"]["status"] == ["SUCCEEDED", "FAILED"]
    queues = sorted(ref["Fn::GetAtt"][0] for ref in pattern["detail"]["jobQueue"])
    assert queues == sorted(_queue_of(synthesized, kind) for kind in ("Gpu", "Cpu"))
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [BATCH_EVENTS_LOGICAL_ID, "Arn"]}
    assert "InputTransformer" not in target and "Input" not in target  # the whole event
    (permission,) = [
        p["Properties"]
        for p in synthesized.resources_of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert permission["FunctionName"] == {"Fn::GetAtt": [BATCH_EVENTS_LOGICAL_ID, "Arn"]}


def test_events_function_runs_the_front_image_with_the_events_handler(synthesized: Synthesized) -> None:
    events = synthesized.resources[BATCH_EVENTS_LOGICAL_ID]
    front = synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]
    assert events["Properties"]["ImageConfig"] == {"Command": [BATCH_EVENTS_HANDLER]}
    assert events["Properties"]["Code"] == front["Properties"]["Code"]  # one image, built and stored once
    assert events["Properties"]["Timeout"] == 900
    variables = events["Properties"]["Environment"]["Variables"]
    assert variables["AIMASS_JOBS_TABLE"] == {"Ref": synthesized.output_ref("JobsTableName")}
    assert variables["AIMASS_FILES_BUCKET"] == {"Ref": synthesized.output_ref("FilesBucketName")}
    assert variables["AIMASS_METERING"] == "dynamodb"


# --- the front function ------------------------------------------------------------------------------------


def _resolved_targets(synthesized: Synthesized) -> dict[str, dict[str, str]]:
    """AIMASS_BATCH_TARGETS with each reference written as the logical id it names."""
    value = synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]["Properties"]["Environment"]["Variables"][
        "AIMASS_BATCH_TARGETS"
    ]
    parts = value["Fn::Join"][1]
    text = "".join(part if isinstance(part, str) else (part.get("Ref") or part["Fn::GetAtt"][0]) for part in parts)
    targets: dict[str, dict[str, str]] = json.loads(text)
    return targets


def test_front_function_is_told_every_domains_queue_and_job_definition(synthesized: Synthesized) -> None:
    targets = _resolved_targets(synthesized)
    assert sorted(targets) == DOCKERFILE_DOMAINS
    definitions = {
        key: resource for key, resource in synthesized.resources_of_type("AWS::Batch::JobDefinition").items()
    }
    for domain, target in targets.items():
        assert set(target) == {"queue", "job_definition"}
        assert target["queue"] == _queue_of(synthesized, "Gpu" if domain in GPU_DOMAINS else "Cpu")
        assert target["job_definition"] in definitions
        assert f"/Batch/{domain.capitalize()}Job/" in definitions[target["job_definition"]]["Metadata"]["aws:cdk:path"]
    variables = synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]["Properties"]["Environment"]["Variables"]
    assert variables["AIMASS_JOBS_TABLE"] == {"Ref": synthesized.output_ref("JobsTableName")}
    # The other domains' functions never submit batches.
    for domain in DOCKERFILE_DOMAINS:
        if domain != "text":
            assert (
                "AIMASS_BATCH_TARGETS"
                not in synthesized.resources[function_logical_id(domain)]["Properties"]["Environment"]["Variables"]
            )


def test_front_function_may_submit_and_stop_jobs(synthesized: Synthesized) -> None:
    role = synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s for s in synthesized.role_statements(role) if any(a.startswith("batch:") for a in _as_list(s["Action"]))
    ]
    by_action = {action: statement for statement in statements for action in _as_list(statement["Action"])}
    assert set(by_action) == {
        "batch:SubmitJob",
        "batch:CancelJob",
        "batch:TerminateJob",
        "batch:TagResource",
        "batch:DescribeJobs",
    }
    submit = json.dumps(by_action["batch:SubmitJob"]["Resource"])
    for key in [
        *synthesized.resources_of_type("AWS::Batch::JobDefinition"),
        *synthesized.resources_of_type("AWS::Batch::JobQueue"),
    ]:
        assert f'"{key}"' in submit
    assert ":job/*" in json.dumps(by_action["batch:CancelJob"]["Resource"])
    assert by_action["batch:DescribeJobs"]["Resource"] == "*"


# --- least privilege -----------------------------------------------------------------------------------------


def test_no_wildcard_actions_in_any_batch_policy(synthesized: Synthesized) -> None:
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in _as_list(statement["Action"]):
                assert "*" not in action, statement


def _actions_on(synthesized: Synthesized, role_id: str, logical_id: str) -> set[str]:
    return {
        action
        for statement in synthesized.role_statements(role_id)
        if f'"{logical_id}"' in json.dumps(statement["Resource"])
        for action in _as_list(statement["Action"])
    }


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_job_role_keeps_batches_reads_files_and_writes_results(synthesized: Synthesized, domain: str) -> None:
    definition = _job_definitions(synthesized)[domain]
    role = definition["ContainerProperties"]["JobRoleArn"]["Fn::GetAtt"][0]
    assert role in synthesized.batch_role_ids()
    trust = synthesized.resources[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}}
    ]
    jobs = synthesized.output_ref("JobsTableName")
    assert _actions_on(synthesized, role, jobs) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
    }
    assert _actions_on(synthesized, role, synthesized.output_ref("UsageTableName")) == {"dynamodb:PutItem"}
    assert _actions_on(synthesized, role, synthesized.output_ref("CountersTableName")) == {
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
    }
    assert _actions_on(synthesized, role, synthesized.output_ref("KeysTableName")) == set()
    files = synthesized.output_ref("FilesBucketName")
    file_statements = [s for s in synthesized.role_statements(role) if f'"{files}"' in json.dumps(s["Resource"])]
    deletes = [s for s in file_statements if "s3:DeleteObject" in _as_list(s["Action"])]
    # Deleting is kept to the work prefix: never a tenant's file.
    assert [json.dumps(s["Resource"]) for s in deletes] == [
        json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": [files, "Arn"]}, f"/{BATCH_WORK_PREFIX}*"]]})
    ]
    assert {a for s in file_statements for a in _as_list(s["Action"])} == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:ListBucket",
    }
    # The models bucket: read only.
    models = synthesized.output_ref("ModelBucketName")
    assert not _actions_on(synthesized, role, models) & {"s3:PutObject", "s3:DeleteObject"}
    assert _actions_on(synthesized, role, models) >= {"s3:GetObject"}


def test_execution_role_pulls_images_and_writes_logs_only(synthesized: Synthesized) -> None:
    (definition, *_) = _job_definitions(synthesized).values()
    role = definition["ContainerProperties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]
    actions = {a for s in synthesized.role_statements(role) for a in _as_list(s["Action"])}
    assert actions <= {
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    assert "ecr:BatchGetImage" in actions and "logs:PutLogEvents" in actions


def test_events_role_keeps_batches_and_bills_them(synthesized: Synthesized) -> None:
    role = synthesized.resources[BATCH_EVENTS_LOGICAL_ID]["Properties"]["Role"]["Fn::GetAtt"][0]
    assert _actions_on(synthesized, role, synthesized.output_ref("JobsTableName")) == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
    }
    assert _actions_on(synthesized, role, synthesized.output_ref("UsageTableName")) == {"dynamodb:PutItem"}
    assert "s3:PutObject" in _actions_on(synthesized, role, synthesized.output_ref("FilesBucketName"))
    assert not any("batch:" in a for s in synthesized.role_statements(role) for a in _as_list(s["Action"]))


# --- outputs and compliance -----------------------------------------------------------------------------------


def test_outputs_name_the_queues_and_the_jobs_table(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json["Outputs"]
    for kind in ("Gpu", "Cpu"):
        value = outputs[f"Batch{kind}QueueName"]["Value"]
        assert _queue_of(synthesized, kind) in json.dumps(value)
    assert outputs["JobsTableName"]["Value"] == {"Ref": synthesized.output_ref("JobsTableName")}


def test_the_fake_checkout_synthesizes_the_batch_fallback_cleanly(fake_synthesized: Synthesized) -> None:
    # The compliance tests run cdk-nag and cfn-lint on the default app; the made-up checkout passes cdk-nag too.
    assert fake_synthesized.synth_error is None, fake_synthesized.synth_error
    assert fake_synthesized.stack.node.try_find_child("Batch") is not None
