"""The synthesized serving stack: one function per domain, the route table, IAM and outputs.

What is expected comes from the checkout itself: the domains are the directories functions/<d>/ with a
Dockerfile, their sizes are their function.toml, and the models are models.catalogue.catalogue().
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Token
from aws_cdk.assertions import Match, Template

from aimass.contract import IMPORTED_MODELS_PREFIX, MAX_VCPUS, MB_PER_VCPU
from infra.app import build_app
from infra.config import DEFAULT_PLANS, ServingConfig
from infra.routes import SHARED_ROUTES, Route, RouteError, route_table
from infra.stacks.serving_stack import (
    AUTHORIZER_LOGICAL_ID,
    BATCH_EVENTS_LOGICAL_ID,
    TEXT_FUNCTION_LOGICAL_ID,
    ServingStack,
    function_logical_id,
)
from models.catalogue import catalogue
from tests.infra.infra_synth import (
    AUTHORIZER,
    DOCKERFILE_DOMAINS,
    IMPORT_DOMAIN,
    IMPORT_VARIABLES,
    REPO_ROOT,
    Synthesized,
    fake_checkout,
)

CATALOGUE = catalogue()


def _function_toml(domain: str) -> dict[str, Any]:
    return tomllib.loads((REPO_ROOT / "functions" / domain / "function.toml").read_text(encoding="utf-8"))


def _logical_id(synthesized: Synthesized, cfn_type: str, predicate: Any = None) -> str:
    found: list[str] = [
        key for key, value in synthesized.resources_of_type(cfn_type).items() if predicate is None or predicate(value)
    ]
    assert len(found) == 1, (cfn_type, found)
    return found[0]


def _model_bucket_id(synthesized: Synthesized) -> str:
    return synthesized.output_ref("ModelBucketName")


def _files_bucket_id(synthesized: Synthesized) -> str:
    return synthesized.output_ref("FilesBucketName")


def _encryption_key_id(synthesized: Synthesized, bucket_id: str) -> str:
    """The key a bucket's objects are encrypted with (SSE-KMS at rest)."""
    (rule,) = synthesized.resources[bucket_id]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    logical_id: str = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    assert synthesized.resources[logical_id]["Type"] == "AWS::KMS::Key"
    return logical_id


def _bucket_key_id(synthesized: Synthesized) -> str:
    """The model bucket's own key (SSE-KMS at rest)."""
    return _encryption_key_id(synthesized, _model_bucket_id(synthesized))


def _files_key_id(synthesized: Synthesized) -> str:
    """The files bucket's own key."""
    return _encryption_key_id(synthesized, _files_bucket_id(synthesized))


def _model_key_id(synthesized: Synthesized) -> str:
    """The envelope key: the one the stage's alias names."""
    (alias,) = synthesized.resources_of_type("AWS::KMS::Alias").values()
    logical_id: str = alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
    assert synthesized.resources[logical_id]["Type"] == "AWS::KMS::Key"
    return logical_id


def _publisher_role_id(synthesized: Synthesized) -> str:
    role_id: str = synthesized.template_json["Outputs"]["ModelPublisherRoleArn"]["Value"]["Fn::GetAtt"][0]
    return role_id


def _rest_api_id(synthesized: Synthesized) -> str:
    return _logical_id(synthesized, "AWS::ApiGateway::RestApi")


def _metering_key_id(synthesized: Synthesized) -> str:
    """The key the metering tables are encrypted with."""
    keys: set[str] = {
        table["Properties"]["SSESpecification"]["KMSMasterKeyId"]["Fn::GetAtt"][0]
        for table in synthesized.resources_of_type("AWS::DynamoDB::Table").values()
    }
    assert len(keys) == 1, keys
    return keys.pop()


def _topic_key_id(synthesized: Synthesized) -> str:
    """The alarm topic's key."""
    (topic,) = synthesized.resources_of_type("AWS::SNS::Topic").values()
    logical_id: str = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    return logical_id


# --- resources and counts -----------------------------------------------------------------------


def test_stack_name_and_template_file(synthesized: Synthesized) -> None:
    assert synthesized.stack.stack_name == "AiMass-Serving-dev"
    assert synthesized.template_path.name == "AiMass-Serving-dev.template.json"


def test_the_checkout_has_functions_for_its_models() -> None:
    assert "text" in DOCKERFILE_DOMAINS
    assert {entry.domain for entry in CATALOGUE} <= set(DOCKERFILE_DOMAINS)


def test_resource_counts(synthesized: Synthesized) -> None:
    template = synthesized.template
    # One function per domain, the API key authorizer and the batch events function (no custom-resource helper
    # functions), each an image.
    functions = len(DOCKERFILE_DOMAINS) + 2
    template.resource_count_is("AWS::Lambda::Function", functions)
    for function in synthesized.resources_of_type("AWS::Lambda::Function").values():
        assert function["Properties"]["PackageType"] == "Image"
    template.resource_count_is("AWS::ApiGateway::RestApi", 1)
    template.resource_count_is("AWS::S3::Bucket", 3)  # models, tenants' files, their access logs
    # The model bucket's, the envelope key, the files bucket's, the metering tables', the alarm topic's.
    template.resource_count_is("AWS::KMS::Key", 5)
    template.resource_count_is("AWS::KMS::Alias", 1)  # the envelope key's
    # One per function, the publisher, the key and usage administrator, and API Gateway's CloudWatch Logs role;
    # and the batch fallback's: a job role per domain, the jobs' execution role, the GPU instances' role and the
    # VPC flow log's (test_infra_batch).
    template.resource_count_is("AWS::IAM::Role", functions + 3 + len(DOCKERFILE_DOMAINS) + 3)
    # Functions, API access, and the batch jobs' and the VPC flow log's.
    template.resource_count_is("AWS::Logs::LogGroup", functions + 1 + 2)
    template.resource_count_is("AWS::DynamoDB::Table", 4)  # keys, usage, counters, jobs
    template.resource_count_is("AWS::ApiGateway::UsagePlan", len(DEFAULT_PLANS))
    # AI Mass keys live in the keys table; their edge keys are made when a key is created, not by the stack.
    template.resource_count_is("AWS::ApiGateway::ApiKey", 0)
    template.resource_count_is("AWS::ApiGateway::Authorizer", 1)
    template.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    # Errors, throttles and p99 latency per domain function, the authorizer's errors and throttles, the API's 5XX rate.
    template.resource_count_is("AWS::CloudWatch::Alarm", 3 * len(DOCKERFILE_DOMAINS) + 2 + 1)
    template.resource_count_is("AWS::SNS::Topic", 1)


def test_logical_ids() -> None:
    assert TEXT_FUNCTION_LOGICAL_ID == "TextFunction"
    assert function_logical_id("vision") == "VisionFunction"
    assert function_logical_id("rl") == "RlFunction"
    assert function_logical_id("sign_language") == "SignLanguageFunction"


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_one_function_per_domain_with_a_stable_readable_logical_id(synthesized: Synthesized, domain: str) -> None:
    function = synthesized.resources[function_logical_id(domain)]
    assert function["Type"] == "AWS::Lambda::Function"
    # SAM CLI builds the image from this asset metadata (`sam local invoke ... TextFunction`).
    assert function["Metadata"]["aws:asset:dockerfile-path"] == f"functions/{domain}/Dockerfile"
    assert (synthesized.outdir / function["Metadata"]["aws:asset:path"]).is_dir()


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_function_properties_follow_function_toml(synthesized: Synthesized, domain: str) -> None:
    toml = _function_toml(domain)
    function = synthesized.resources[function_logical_id(domain)]["Properties"]
    assert function["MemorySize"] == toml["memory_mb"]
    assert function["Timeout"] == toml["timeout_s"]
    assert function["Architectures"] == [toml["architecture"]]
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert set(function["LoggingConfig"]["LogGroup"]) == {"Ref"}
    assert function.get("ReservedConcurrentExecutions") == toml.get("reserved_concurrency")
    # One ONNX Runtime intra-op thread per vCPU the memory buys (1 vCPU per 1,769 MB, at most 6).
    threads = max(1, min(MAX_VCPUS, math.ceil(toml["memory_mb"] / MB_PER_VCPU)))
    variables = dict(function["Environment"]["Variables"])
    variables.pop("AIMASS_PEERS", None)  # the front function's (test_the_front_function_knows_and_may_invoke_its_peers)
    variables.pop("AIMASS_EDGE_API_ID", None)  # the front function's too (test_infra_edge)
    variables.pop("AIMASS_FILES_BUCKET", None)  # and the files bucket (test_infra_files)
    variables.pop("AIMASS_JOBS_TABLE", None)  # and the batches' (test_infra_batch)
    variables.pop("AIMASS_BATCH_TARGETS", None)
    variables.pop("AIMASS_IMPORT_DOMAIN", None)  # and where batches of imported models run (test_infra_imports)
    for name in IMPORT_VARIABLES:  # the import function's (test_infra_imports)
        variables.pop(name, None)
    plans = variables.pop("AIMASS_PLANS")  # test_infra_metering checks what they say
    assert json.loads(plans) == {name: plan.model_dump() for name, plan in DEFAULT_PLANS.items()}
    assert variables == {
        "AIMASS_MODEL_STORE": "/var/task/model_store",
        "AIMASS_DOMAINS": json.dumps([domain]),
        "AIMASS_INTRA_OP_THREADS": str(threads),
        "AIMASS_CACHE_DIR": "/tmp/aimass-cache",
        "AIMASS_MODEL_BUCKET": {"Ref": _model_bucket_id(synthesized)},
        "AIMASS_KMS_KEY_ID": {"Fn::GetAtt": [_model_key_id(synthesized), "Arn"]},
        "AIMASS_ALIAS_CHECK_S": "30",
        "AIMASS_METERING": "dynamodb",
        "AIMASS_KEYS_TABLE": {"Ref": synthesized.output_ref("KeysTableName")},
        "AIMASS_USAGE_TABLE": {"Ref": synthesized.output_ref("UsageTableName")},
        "AIMASS_COUNTERS_TABLE": {"Ref": synthesized.output_ref("CountersTableName")},
    }


def test_text_function_properties(synthesized: Synthesized) -> None:
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "PackageType": "Image",
            "MemorySize": 1769,
            "Timeout": 29,
            "Architectures": ["x86_64"],
            "Environment": {
                "Variables": Match.object_like({"AIMASS_DOMAINS": '["text"]', "AIMASS_INTRA_OP_THREADS": "1"})
            },
        },
    )


def test_log_groups_have_retention(synthesized: Synthesized) -> None:
    for log_group in synthesized.resources_of_type("AWS::Logs::LogGroup").values():
        assert log_group["Properties"]["RetentionInDays"] == 30


def test_model_bucket(synthesized: Synthesized) -> None:
    model_bucket = synthesized.resources[_model_bucket_id(synthesized)]
    props = model_bucket["Properties"]
    assert model_bucket["DeletionPolicy"] == "Retain"
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse == [
        {
            "BucketKeyEnabled": True,
            "ServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms",
                "KMSMasterKeyID": {"Fn::GetAtt": [_bucket_key_id(synthesized), "Arn"]},
            },
        }
    ]
    log_bucket_id = props["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    assert synthesized.resources[log_bucket_id]["Type"] == "AWS::S3::Bucket"


def test_buckets_block_public_access_and_require_tls(synthesized: Synthesized) -> None:
    buckets = synthesized.resources_of_type("AWS::S3::Bucket")
    for bucket in buckets.values():
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert bucket["DeletionPolicy"] == "Retain"
    policies = synthesized.resources_of_type("AWS::S3::BucketPolicy").values()
    tls_only = {
        policy["Properties"]["Bucket"]["Ref"]
        for policy in policies
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Deny"
        and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and statement["Action"] == "s3:*"
    }
    assert tls_only == set(buckets)


def test_kms_keys_rotate_and_are_retained(synthesized: Synthesized) -> None:
    keys = synthesized.resources_of_type("AWS::KMS::Key")
    ours = [
        _bucket_key_id(synthesized),
        _model_key_id(synthesized),
        _files_key_id(synthesized),
        _metering_key_id(synthesized),
    ]
    assert len(set(ours)) == 4
    assert set(keys) == {*ours, _topic_key_id(synthesized)}
    for logical_id, key in keys.items():
        assert key["Properties"]["EnableKeyRotation"] is True
        assert "KeySpec" not in key["Properties"]  # symmetric: Encrypt, Decrypt, GenerateDataKey
        if logical_id in ours:
            # Published models, tenants' files and metering records outlive the stack, and so must the keys they were
            # encrypted with.
            assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
        else:
            # The alarm topic's key protects messages in flight only.
            assert key["DeletionPolicy"] == "Delete"


def test_envelope_key(synthesized: Synthesized, fake_synthesized: Synthesized) -> None:
    key = synthesized.resources[_model_key_id(synthesized)]["Properties"]
    assert key["Description"] == "Wraps the data keys of encrypted AI Mass model versions (envelope encryption)"
    (alias,) = synthesized.resources_of_type("AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == "alias/aimass-dev-models"
    (alias,) = fake_synthesized.resources_of_type("AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == "alias/aimass-prod-models"


# --- API ----------------------------------------------------------------------------------------


def test_rest_api(synthesized: Synthesized) -> None:
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::RestApi",
        {
            "Name": "aimass-dev",
            "BinaryMediaTypes": ["*/*"],
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
        },
    )


def test_api_stage_logging_tracing_throttling(synthesized: Synthesized) -> None:
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": "dev",
            "TracingEnabled": True,
            "AccessLogSetting": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp('"status":"\\$context.status"'),
            },
            "MethodSettings": [
                {
                    "HttpMethod": "*",
                    "ResourcePath": "/*",
                    "LoggingLevel": "ERROR",
                    "DataTraceEnabled": False,
                    "ThrottlingRateLimit": 50,
                    "ThrottlingBurstLimit": 100,
                }
            ],
        },
    )


def test_access_logs_go_to_their_log_group(synthesized: Synthesized) -> None:
    (stage,) = synthesized.resources_of_type("AWS::ApiGateway::Stage").values()
    destination = json.dumps(stage["Properties"]["AccessLogSetting"]["DestinationArn"])
    (log_group_id,) = [key for key in synthesized.resources_of_type("AWS::Logs::LogGroup") if "Access" in key]
    assert f'"Ref": "{log_group_id}"' in destination


# --- API: the route table ----------------------------------------------------------------------


def _expected_table() -> list[Route]:
    # The table built from the catalogue and the function.toml files as read here (not through infra.config).
    extra = {domain: tuple(_function_toml(domain).get("routes", [])) for domain in DOCKERFILE_DOMAINS}
    return route_table(CATALOGUE, extra, "text", IMPORT_DOMAIN)


def test_everything_routed_is_exactly_the_table(synthesized: Synthesized) -> None:
    expected = {
        (method, path): function_logical_id(domain) for path, methods, domain in _expected_table() for method in methods
    }
    assert synthesized.routed() == expected


@pytest.mark.parametrize("entry", CATALOGUE, ids=lambda entry: entry.name)
def test_every_model_is_routed_to_its_own_domain_function(synthesized: Synthesized, entry: Any) -> None:
    routed = synthesized.routed()
    own = function_logical_id(entry.domain)
    for path in (f"/v2/models/{entry.name}", f"/v2/models/{entry.name}/{{proxy+}}"):
        assert routed[("ANY", path)] == own
    # Nothing else under the model's paths, and no other function answers them.
    under = {key: fn for key, fn in routed.items() if key[1].startswith(f"/v2/models/{entry.name}")}
    assert set(under) == {("ANY", f"/v2/models/{entry.name}"), ("ANY", f"/v2/models/{entry.name}/{{proxy+}}")}


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_task_prefix_and_extra_routes_go_to_the_domain_function(synthesized: Synthesized, domain: str) -> None:
    routed = synthesized.routed()
    assert routed[("ANY", f"/v1/{domain}/{{proxy+}}")] == function_logical_id(domain)
    for path in _function_toml(domain).get("routes", []):
        assert routed[("ANY", path)] == function_logical_id(domain)


def test_shared_routes_go_to_the_front_function(synthesized: Synthesized) -> None:
    routed = synthesized.routed()
    assert {(method, path) for path, methods in SHARED_ROUTES for method in methods} == {
        ("ANY", "/v2"),
        ("ANY", "/v2/health/{proxy+}"),
        ("ANY", "/v2/repository/index"),
        ("ANY", "/v1/models"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        # The admin API and usage reports: only the front function may write keys and read usage.
        ("ANY", "/v1/admin/{proxy+}"),
        ("ANY", "/v1/usage"),
        # A tenant's files: kept by the front function.
        ("ANY", "/v1/files"),
        ("ANY", "/v1/files/{proxy+}"),
        # Its uploads in parts and its batches: the front function too.
        ("ANY", "/v1/uploads"),
        ("ANY", "/v1/uploads/{proxy+}"),
        ("ANY", "/v1/batches"),
        ("ANY", "/v1/batches/{proxy+}"),
        # The browser console's files.
        ("GET", "/console"),
        ("GET", "/console/{proxy+}"),
    }
    for path, methods in SHARED_ROUTES:
        for method in methods:
            assert routed[(method, path)] == TEXT_FUNCTION_LOGICAL_ID


def test_text_routes(synthesized: Synthesized) -> None:
    routed = synthesized.routed()
    for path in ("/v1/embeddings", "/v2/models/all-minilm-l6-v2", "/v2/models/all-minilm-l6-v2/{proxy+}"):
        assert routed[("ANY", path)] == TEXT_FUNCTION_LOGICAL_ID
    # No catch-all: a path outside the table is API Gateway's 403, never some function's guess.
    assert not any(path in {"/v2/{proxy+}", "/v1/{proxy+}", "/{proxy+}"} for _, path in routed)


def test_every_method_is_a_lambda_proxy(synthesized: Synthesized) -> None:
    for (_, path), method in synthesized.api_methods().items():
        properties = method["Properties"]
        integration = properties["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["IntegrationHttpMethod"] == "POST"
        assert integration["TimeoutInMillis"] == 29000
        # Who may call which method: test_infra_edge.
        assert "RequestValidatorId" in properties
        if path.endswith("{proxy+}"):
            assert properties["RequestParameters"] == {"method.request.path.proxy": True}
        else:
            assert "RequestParameters" not in properties


def test_one_invoke_permission_per_function_for_this_api(synthesized: Synthesized) -> None:
    # The authorizer's own permission names its authorizer (test_infra_edge).
    # EventBridge's permission names the batch events function (test_infra_batch).
    permissions = [
        permission
        for permission in synthesized.resources_of_type("AWS::Lambda::Permission").values()
        if permission["Properties"]["FunctionName"]["Fn::GetAtt"][0]
        not in (AUTHORIZER_LOGICAL_ID, BATCH_EVENTS_LOGICAL_ID)
    ]
    invoked = sorted(permission["Properties"]["FunctionName"]["Fn::GetAtt"][0] for permission in permissions)
    assert invoked == sorted(function_logical_id(domain) for domain in DOCKERFILE_DOMAINS)
    for permission in permissions:
        properties = permission["Properties"]
        assert properties["Action"] == "lambda:InvokeFunction"
        assert properties["Principal"] == "apigateway.amazonaws.com"
        # Any stage, method and path of this API (arn:...:execute-api:<region>:<account>:<api id>/*/*/*).
        source = json.dumps(properties["SourceArn"])
        assert f'{{"Ref": "{_rest_api_id(synthesized)}"}}' in source
        assert source.endswith('"/*/*/*"]]}')


def test_outputs(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json["Outputs"]
    assert set(outputs) == {
        "ApiUrl",
        "ModelBucketName",
        "ModelKeyArn",
        "ModelPublisherRoleArn",
        "FilesBucketName",
        "KeysTableName",
        "UsageTableName",
        "CountersTableName",
        "AdminRoleArn",
        "DashboardName",
        "AlarmTopicArn",
        "RestApiId",
        "JobsTableName",  # test_infra_batch
        "BatchGpuQueueName",
        "BatchCpuQueueName",
    }
    assert outputs["ModelBucketName"]["Value"] == {"Ref": _model_bucket_id(synthesized)}
    assert outputs["ModelKeyArn"]["Value"] == {"Fn::GetAtt": [_model_key_id(synthesized), "Arn"]}
    assert synthesized.resources[_publisher_role_id(synthesized)]["Type"] == "AWS::IAM::Role"
    assert "ModelPublisherRole" in _publisher_role_id(synthesized)
    assert "execute-api" in json.dumps(outputs["ApiUrl"]["Value"])


# --- no fixed account or region -----------------------------------------------------------------


def test_stack_is_environment_agnostic(synthesized: Synthesized) -> None:
    assert Token.is_unresolved(synthesized.stack.account)
    assert Token.is_unresolved(synthesized.stack.region)
    manifest = json.loads((synthesized.outdir / "manifest.json").read_text(encoding="utf-8"))
    environments = {
        artifact["environment"]
        for artifact in manifest["artifacts"].values()
        if artifact["type"] == "aws:cloudformation:stack"
    }
    assert environments == {"aws://unknown-account/unknown-region"}


def test_template_has_no_literal_account_or_region(synthesized: Synthesized) -> None:
    text = json.dumps(synthesized.template_json)
    assert not re.search(r"arn:aws[\w-]*:[\w-]*:[\w-]*:\d{12}:", text)
    assert not re.search(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d\b", text)
    assert "AWS::AccountId" in text


# --- IAM ----------------------------------------------------------------------------------------


def _role_statements(synthesized: Synthesized, role_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _function_statements(synthesized: Synthesized, domain: str) -> list[dict[str, Any]]:
    role_id = synthesized.resources[function_logical_id(domain)]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = synthesized.resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role  # no AWSLambdaBasicExecutionRole: logs are scoped below
    assert "Policies" not in role
    return _role_statements(synthesized, role_id)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("domain", [domain for domain in DOCKERFILE_DOMAINS if domain != IMPORT_DOMAIN])
def test_function_reads_only_its_own_models(synthesized: Synthesized, domain: str) -> None:
    bucket_arn = {"Fn::GetAtt": [_model_bucket_id(synthesized), "Arn"]}
    names = sorted(entry.name for entry in CATALOGUE if entry.domain == domain)
    statements = _function_statements(synthesized, domain)
    # The model bucket's statements (the front function also stores tenants' files: test_infra_files).
    s3 = [
        s
        for s in statements
        if any(a.startswith("s3:") for a in _as_list(s["Action"]))
        and f'"{_model_bucket_id(synthesized)}"' in json.dumps(s["Resource"])
    ]
    bucket_key_arn = {"Fn::GetAtt": [_bucket_key_id(synthesized), "Arn"]}
    kms = [s for s in statements if s["Resource"] == bucket_key_arn]
    if not names:
        assert s3 == [] and kms == []
        return

    objects = [s for s in s3 if "s3:GetObject" in _as_list(s["Action"])]
    assert len(objects) == 1
    assert sorted(_as_list(objects[0]["Action"])) == ["s3:GetObject", "s3:GetObjectVersion"]
    assert _as_list(objects[0]["Resource"]) == [{"Fn::Join": ["", [bucket_arn, f"/{name}/*"]]} for name in names]
    assert "Condition" not in objects[0]

    listing = [s for s in s3 if "s3:ListBucket" in _as_list(s["Action"])]
    assert len(listing) == 1
    assert sorted(_as_list(listing[0]["Action"])) == ["s3:ListBucket", "s3:ListBucketVersions"]
    assert listing[0]["Resource"] == bucket_arn
    assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": [f"{name}/*" for name in names]}}
    assert len(s3) == 2

    assert len(kms) == 1
    assert kms[0]["Action"] == "kms:Decrypt"
    via = json.dumps(kms[0]["Condition"]["StringEquals"]["kms:ViaService"])
    assert '"s3."' in via and "AWS::Region" in via


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_function_may_unwrap_data_keys_with_the_envelope_key_only(synthesized: Synthesized, domain: str) -> None:
    model_key_arn = {"Fn::GetAtt": [_model_key_id(synthesized), "Arn"]}
    statements = _function_statements(synthesized, domain)
    # Called directly by the function (aimass.store.sealing), so no kms:ViaService condition; Decrypt only.
    assert [s for s in statements if s["Resource"] == model_key_arn] == [
        {"Action": "kms:Decrypt", "Effect": "Allow", "Resource": model_key_arn}
    ]
    kms = [s for s in statements if any(a.startswith("kms:") for a in _as_list(s["Action"]))]
    assert {json.dumps(s["Resource"]) for s in kms} <= {
        json.dumps(model_key_arn),
        json.dumps({"Fn::GetAtt": [_bucket_key_id(synthesized), "Arn"]}),
        json.dumps({"Fn::GetAtt": [_metering_key_id(synthesized), "Arn"]}),  # through DynamoDB only
        json.dumps({"Fn::GetAtt": [_files_key_id(synthesized), "Arn"]}),  # the front function's, through S3 only
    }


def test_no_function_may_read_another_domains_models(synthesized: Synthesized) -> None:
    for domain in DOCKERFILE_DOMAINS:
        text = json.dumps(_function_statements(synthesized, domain))
        for entry in CATALOGUE:
            if entry.domain != domain:
                assert f"/{entry.name}/*" not in text, (domain, entry.name)


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_function_writes_only_its_own_log_group(synthesized: Synthesized, domain: str) -> None:
    function = synthesized.resources[function_logical_id(domain)]["Properties"]
    log_group_id = function["LoggingConfig"]["LogGroup"]["Ref"]
    logs = [s for s in _function_statements(synthesized, domain) if "logs:PutLogEvents" in _as_list(s["Action"])]
    assert logs == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group_id, "Arn"]},
        }
    ]


def test_the_front_function_knows_and_may_invoke_its_peers(synthesized: Synthesized) -> None:
    # /v1/models and the V2 index are the front function's; it asks every other domain function for its models.
    front = function_logical_id("text")
    peers = [domain for domain in DOCKERFILE_DOMAINS if domain != "text"]
    environment = synthesized.resources[front]["Properties"]["Environment"]["Variables"]
    described = json.dumps(environment["AIMASS_PEERS"])
    for domain in peers:
        assert f'\\"domain\\": \\"{domain}\\"' in described, domain
        assert f'{{"Ref": "{function_logical_id(domain)}"}}' in described, domain
        for entry in CATALOGUE:
            if entry.domain == domain:
                assert f'\\"{entry.name}\\"' in described, entry.name
    invokes = [s for s in _function_statements(synthesized, "text") if s["Action"] == "lambda:InvokeFunction"]
    assert len(invokes) == 1
    assert sorted(json.dumps(r) for r in _as_list(invokes[0]["Resource"])) == sorted(
        json.dumps({"Fn::GetAtt": [function_logical_id(domain), "Arn"]}) for domain in peers
    )
    # Peers are not told of anyone and may invoke no function.
    for domain in peers:
        assert (
            "AIMASS_PEERS"
            not in synthesized.resources[function_logical_id(domain)]["Properties"]["Environment"]["Variables"]
        )
        assert not [s for s in _function_statements(synthesized, domain) if "lambda:" in json.dumps(s["Action"])]


def test_publisher_role_is_assumed_from_the_account(synthesized: Synthesized) -> None:
    role = synthesized.resources[_publisher_role_id(synthesized)]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Effect"] == "Allow"
    assert set(trust) == {"Action", "Effect", "Principal"}
    assert trust["Principal"] == {
        "AWS": {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, ":root"]]}
    }
    description = role["Description"]
    assert description.startswith("AI Mass dev model publisher: assumed by operators or CI of this account")
    assert "publish/promote/rollback/canary/encrypt" in description
    assert "ManagedPolicyArns" not in role and "Policies" not in role


def test_publisher_role_statements(synthesized: Synthesized) -> None:
    bucket_arn = {"Fn::GetAtt": [_model_bucket_id(synthesized), "Arn"]}
    via_s3 = {"StringEquals": {"kms:ViaService": {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}}
    statements = _role_statements(synthesized, _publisher_role_id(synthesized))
    expected = [
        # Every model's objects (the publish lease is deleted; object versions never are).
        {
            "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [bucket_arn, "/*"]]},
        },
        {"Action": "s3:ListBucket", "Effect": "Allow", "Resource": bucket_arn},
        # The bucket's key, only through S3 (writing and reading its objects).
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Condition": via_s3,
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [_bucket_key_id(synthesized), "Arn"]},
        },
        # The envelope key, called directly: wrap a data key (or have KMS generate one), unwrap it.
        {
            "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [_model_key_id(synthesized), "Arn"]},
        },
    ]
    assert sorted(statements, key=json.dumps) == sorted(expected, key=json.dumps)


def test_only_the_publisher_may_write_models_or_wrap_data_keys(synthesized: Synthesized) -> None:
    publisher = _publisher_role_id(synthesized)
    metering_key_arn = {"Fn::GetAtt": [_metering_key_id(synthesized), "Arn"]}
    # The front function writes tenants' files, not models (test_infra_files checks those statements).
    files = (_files_bucket_id(synthesized), _files_key_id(synthesized))
    # The import function writes the imported models' prefix only (test_infra_imports checks those statements).
    imports = synthesized.resources[function_logical_id(IMPORT_DOMAIN)]["Properties"]["Role"]["Fn::GetAtt"][0]
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        if {"Ref": publisher} in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            resources = json.dumps(statement["Resource"])
            if any(f'"{logical_id}"' in resources for logical_id in files):
                assert not any(logical_id in resources for logical_id in (_model_bucket_id(synthesized), publisher))
                continue
            if {"Ref": imports} in policy["Properties"]["Roles"] and (
                f'/{IMPORTED_MODELS_PREFIX}*"' in resources or _bucket_key_id(synthesized) in resources
            ):
                continue
            actions = set(_as_list(statement["Action"]))
            assert not actions & {"s3:PutObject", "s3:DeleteObject", "kms:Encrypt"}, statement
            if "kms:GenerateDataKey" in actions:
                # The metering tables' key, used by DynamoDB on the caller's behalf: no data key reaches anyone.
                assert statement["Resource"] == metering_key_arn, statement
                assert statement["Condition"] == {
                    "StringEquals": {
                        "kms:ViaService": {"Fn::Join": ["", ["dynamodb.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
                    }
                }


def test_only_xray_is_granted_on_every_resource(synthesized: Synthesized) -> None:
    # X-Ray trace upload has no resource-level permissions (acknowledged as IAM5 in infra/); nor have the ECR
    # authorization token every image pull of a batch job starts with, and the front function's batch:DescribeJobs.
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "*" in _as_list(statement["Resource"]):
                assert set(_as_list(statement["Action"])) in (
                    {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
                    {"ecr:GetAuthorizationToken"},
                    {"batch:DescribeJobs"},
                )


# --- another checkout: a second domain, another front, context overrides, no model built ---------


def _platforms(synthesized: Synthesized) -> dict[str, str]:
    """Function logical id -> the platform its image is built for."""
    assets = json.loads((synthesized.outdir / f"{synthesized.stack.stack_name}.assets.json").read_text("utf-8"))
    by_directory = {
        image["source"]["directory"]: image["source"]["platform"] for image in assets["dockerImages"].values()
    }
    return {
        key: by_directory[function["Metadata"]["aws:asset:path"]]
        for key, function in synthesized.resources_of_type("AWS::Lambda::Function").items()
    }


def test_default_image_platforms(synthesized: Synthesized) -> None:
    expected = {
        function_logical_id(name): {"x86_64": "linux/amd64", "arm64": "linux/arm64"}[
            _function_toml(name)["architecture"]
        ]
        for name in [*DOCKERFILE_DOMAINS, AUTHORIZER]
    }
    # The batch events function runs the front function's image.
    expected[BATCH_EVENTS_LOGICAL_ID] = expected[TEXT_FUNCTION_LOGICAL_ID]
    assert _platforms(synthesized) == expected


def test_fake_checkout_synthesizes_cleanly(fake_synthesized: Synthesized) -> None:
    assert fake_synthesized.synth_error is None, fake_synthesized.synth_error
    assert fake_synthesized.stack.stack_name == "AiMass-Serving-prod"
    assert fake_synthesized.stack.termination_protection is True
    fake_synthesized.template.has_resource_properties("AWS::ApiGateway::Stage", {"StageName": "prod"})


def test_function_overrides_from_context(fake_synthesized: Synthesized) -> None:
    text = fake_synthesized.resources["TextFunction"]["Properties"]
    assert text["MemorySize"] == 10240
    assert text["Architectures"] == ["arm64"]
    assert text["ReservedConcurrentExecutions"] == 20
    assert text["Environment"]["Variables"]["AIMASS_INTRA_OP_THREADS"] == "6"
    toy = fake_synthesized.resources["ToyFunction"]["Properties"]
    assert (toy["MemorySize"], toy["Timeout"], toy["Architectures"]) == (1024, 10, ["x86_64"])
    assert toy["Environment"]["Variables"]["AIMASS_DOMAINS"] == '["toy"]'
    # aimass:aliasCheckSeconds as `cdk synth -c` passes it (a string); the functions get the number.
    for function in (text, toy):
        assert function["Environment"]["Variables"]["AIMASS_ALIAS_CHECK_S"] == "0.5"
    assert "ReservedConcurrentExecutions" not in toy
    # Each image is built for its own function's instruction set.
    assert _platforms(fake_synthesized) == {
        "TextFunction": "linux/arm64",
        "ToyFunction": "linux/amd64",
        BATCH_EVENTS_LOGICAL_ID: "linux/amd64",  # the front (toy) function's image
        AUTHORIZER_LOGICAL_ID: "linux/amd64",
    }


def test_fake_checkout_routes(fake_synthesized: Synthesized) -> None:
    routed = fake_synthesized.routed()
    assert routed == {
        **{(method, path): "ToyFunction" for path, methods in SHARED_ROUTES for method in methods},
        ("ANY", "/v2/models/all-minilm-l6-v2"): "TextFunction",
        ("ANY", "/v2/models/all-minilm-l6-v2/{proxy+}"): "TextFunction",
        ("ANY", "/v1/text/{proxy+}"): "TextFunction",
        ("ANY", "/v1/embeddings"): "TextFunction",
        ("ANY", "/v2/models/toy-model"): "ToyFunction",
        ("ANY", "/v2/models/toy-model/{proxy+}"): "ToyFunction",
        ("ANY", "/v1/toy/{proxy+}"): "ToyFunction",
        ("ANY", "/v1/toy-compat"): "ToyFunction",
    }


def test_a_streaming_function_is_invoked_with_response_streaming(fake_synthesized: Synthesized) -> None:
    # The toy function says streaming = true in its function.toml; the text function does not.
    modes: dict[str, set[str]] = {}
    routed = fake_synthesized.routed()
    for key, resource in fake_synthesized.api_methods().items():
        integration = resource["Properties"]["Integration"]
        uri = json.dumps(integration["Uri"])
        function = routed[key]
        if function not in ("ToyFunction", "TextFunction"):
            continue
        streams = integration.get("ResponseTransferMode") == "STREAM"
        assert streams == uri.endswith('"/response-streaming-invocations"]]}'), uri
        modes.setdefault(function, set()).add("stream" if streams else "buffered")
    assert modes == {"ToyFunction": {"stream"}, "TextFunction": {"buffered"}}


def test_a_model_without_a_function_fails_the_synth(tmp_path: Path) -> None:
    repo = fake_checkout(tmp_path / "repo")
    (repo / "models/gamma/g_one").mkdir(parents=True)
    (repo / "models/gamma/g_one/spec.py").write_text('NAME = "g-one"\nVERSION = "1"\n', encoding="utf-8")
    (repo / "models/gamma/g_one/build.py").write_text("", encoding="utf-8")
    with pytest.raises(RouteError, match=r"model 'g-one' belongs to domain 'gamma', which has no function"):
        build_app(outdir=str(tmp_path / "cdk.out"), repo_root=repo)


def test_the_stack_takes_a_catalogue(tmp_path: Path) -> None:
    # Before any construct is built: nothing to synthesize, nothing staged.
    repo = fake_checkout(tmp_path / "repo")

    class Model:
        domain, name = "text", "other model"

    with pytest.raises(RouteError, match=r"model 'other model' \(domain 'text'\)"):
        ServingStack(App(outdir=str(tmp_path / "out")), "X", config=ServingConfig(), repo_root=repo, models=[Model()])


def test_template_round_trips_through_assertions(synthesized: Synthesized) -> None:
    # Template.from_stack re-uses the synthesized assembly; both views agree.
    assert Template.from_stack(synthesized.stack).to_json() == synthesized.template_json
