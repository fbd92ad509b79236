"""The synthesized serving stack: resources, their key properties, IAM and outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Token
from aws_cdk.assertions import Match, Template

from infra.stacks.serving_stack import TEXT_FUNCTION_LOGICAL_ID
from tests.infra.infra_synth import Synthesized, synthesize


def _logical_id(synthesized: Synthesized, cfn_type: str, predicate: Any = None) -> str:
    found: list[str] = [
        key for key, value in synthesized.resources_of_type(cfn_type).items() if predicate is None or predicate(value)
    ]
    assert len(found) == 1, (cfn_type, found)
    return found[0]


def _model_bucket_id(synthesized: Synthesized) -> str:
    return _logical_id(
        synthesized,
        "AWS::S3::Bucket",
        lambda bucket: "LoggingConfiguration" in bucket["Properties"],
    )


def _key_id(synthesized: Synthesized) -> str:
    return _logical_id(synthesized, "AWS::KMS::Key")


# --- resources and counts -----------------------------------------------------------------------


def test_stack_name_and_template_file(synthesized: Synthesized) -> None:
    assert synthesized.stack.stack_name == "AiMass-Serving-dev"
    assert synthesized.template_path.name == "AiMass-Serving-dev.template.json"


def test_resource_counts(synthesized: Synthesized) -> None:
    template = synthesized.template
    # One function (no custom-resource helper functions), and it is an image.
    template.resource_count_is("AWS::Lambda::Function", 1)
    template.has_resource_properties("AWS::Lambda::Function", {"PackageType": "Image"})
    template.resource_count_is("AWS::ApiGateway::RestApi", 1)
    template.resource_count_is("AWS::S3::Bucket", 2)  # models + their access logs
    template.resource_count_is("AWS::KMS::Key", 1)
    template.resource_count_is("AWS::Logs::LogGroup", 2)  # function logs + API access logs


def test_function_has_a_stable_readable_logical_id(synthesized: Synthesized) -> None:
    assert TEXT_FUNCTION_LOGICAL_ID == "TextFunction"
    function = synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]
    assert function["Type"] == "AWS::Lambda::Function"
    # SAM CLI builds the image from this asset metadata (`sam local invoke ... TextFunction`).
    assert function["Metadata"]["aws:asset:dockerfile-path"] == "functions/text/Dockerfile"
    assert (synthesized.outdir / function["Metadata"]["aws:asset:path"]).is_dir()


def test_function_properties(synthesized: Synthesized) -> None:
    model_bucket = _model_bucket_id(synthesized)
    synthesized.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "PackageType": "Image",
            "MemorySize": 3008,
            "Timeout": 29,
            "Architectures": ["x86_64"],
            "TracingConfig": {"Mode": "Active"},
            "LoggingConfig": {"LogGroup": {"Ref": Match.any_value()}},
            "Environment": {
                "Variables": {
                    "AIMASS_MODEL_STORE": "/var/task/model_store",
                    "AIMASS_DOMAINS": '["text"]',
                    "AIMASS_INTRA_OP_THREADS": "2",
                    "AIMASS_MODEL_BUCKET": {"Ref": model_bucket},
                }
            },
        },
    )
    function = synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]["Properties"]
    assert json.loads(function["Environment"]["Variables"]["AIMASS_DOMAINS"]) == ["text"]
    assert "ReservedConcurrentExecutions" not in function


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
                "KMSMasterKeyID": {"Fn::GetAtt": [_key_id(synthesized), "Arn"]},
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


def test_kms_key(synthesized: Synthesized) -> None:
    key = synthesized.resources[_key_id(synthesized)]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"


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


def _api_paths(synthesized: Synthesized) -> set[tuple[str, str]]:
    """(HTTP method, full path) of every API method."""
    resources = synthesized.resources_of_type("AWS::ApiGateway::Resource")

    def path_of(ref: dict[str, Any]) -> str:
        if "Fn::GetAtt" in ref:  # the RestApi's root resource
            return ""
        resource = resources[ref["Ref"]]["Properties"]
        return f"{path_of(resource['ParentId'])}/{resource['PathPart']}"

    return {
        (method["Properties"]["HttpMethod"], path_of(method["Properties"]["ResourceId"]))
        for method in synthesized.resources_of_type("AWS::ApiGateway::Method").values()
    }


def test_api_routes(synthesized: Synthesized) -> None:
    assert _api_paths(synthesized) == {
        ("ANY", "/v2"),
        ("ANY", "/v2/{proxy+}"),
        ("ANY", "/v1/{proxy+}"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
    }


def test_every_method_proxies_to_the_text_function(synthesized: Synthesized) -> None:
    methods = synthesized.resources_of_type("AWS::ApiGateway::Method").values()
    for method in methods:
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert integration["IntegrationHttpMethod"] == "POST"
        assert integration["TimeoutInMillis"] == 29000
        assert {"Fn::GetAtt": [TEXT_FUNCTION_LOGICAL_ID, "Arn"]} in integration["Uri"]["Fn::Join"][1]
        assert method["Properties"]["AuthorizationType"] == "NONE"  # until the pay-per-use issue
        assert "RequestValidatorId" in method["Properties"]
    # One invoke permission per method, none for test-invoke.
    assert len(synthesized.resources_of_type("AWS::Lambda::Permission")) == len(methods)


def test_outputs(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json["Outputs"]
    assert set(outputs) == {"ApiUrl", "ModelBucketName"}
    assert outputs["ModelBucketName"]["Value"] == {"Ref": _model_bucket_id(synthesized)}
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


def _function_statements(synthesized: Synthesized) -> list[dict[str, Any]]:
    role_id = synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = synthesized.resources[role_id]["Properties"]
    assert "ManagedPolicyArns" not in role  # no AWSLambdaBasicExecutionRole: logs are scoped below
    assert "Policies" not in role
    statements: list[dict[str, Any]] = []
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_function_reads_the_model_bucket_and_decrypts_with_its_key(synthesized: Synthesized) -> None:
    bucket_arn = {"Fn::GetAtt": [_model_bucket_id(synthesized), "Arn"]}
    objects_arn = {"Fn::Join": ["", [bucket_arn, "/*"]]}
    key_arn = {"Fn::GetAtt": [_key_id(synthesized), "Arn"]}
    statements = _function_statements(synthesized)

    s3 = [s for s in statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))]
    assert len(s3) == 1
    assert s3[0]["Effect"] == "Allow"
    assert {"s3:GetObject*", "s3:List*"} <= set(_as_list(s3[0]["Action"]))
    assert all(action.split(":")[1].startswith(("Get", "List")) for action in _as_list(s3[0]["Action"]))
    assert _as_list(s3[0]["Resource"]) == [bucket_arn, objects_arn]

    kms = [s for s in statements if any(a.startswith("kms:") for a in _as_list(s["Action"]))]
    assert len(kms) == 1
    assert "kms:Decrypt" in _as_list(kms[0]["Action"])
    assert not any(a.startswith(("kms:Encrypt", "kms:GenerateDataKey")) for a in _as_list(kms[0]["Action"]))
    assert kms[0]["Resource"] == key_arn


def test_function_writes_only_its_own_log_group(synthesized: Synthesized) -> None:
    log_group_id = synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    logs = [s for s in _function_statements(synthesized) if "logs:PutLogEvents" in _as_list(s["Action"])]
    assert logs == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group_id, "Arn"]},
        }
    ]


def test_only_xray_is_granted_on_every_resource(synthesized: Synthesized) -> None:
    # X-Ray trace upload has no resource-level permissions (acknowledged as IAM5 in infra/).
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "*" in _as_list(statement["Resource"]):
                assert set(_as_list(statement["Action"])) == {
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                }


# --- context overrides --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arm64(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(
        tmp_path_factory.mktemp("cdk.out-arm64"),
        {
            "aimass:stage": "prod",
            "aimass:textMemoryMb": 10240,
            "aimass:textArchitecture": "arm64",
            "aimass:textReservedConcurrency": 20,
        },
    )


def test_context_overrides(arm64: Synthesized) -> None:
    assert arm64.synth_error is None, arm64.synth_error
    assert arm64.stack.stack_name == "AiMass-Serving-prod"
    assert arm64.stack.termination_protection is True
    arm64.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "MemorySize": 10240,
            "Architectures": ["arm64"],
            "ReservedConcurrentExecutions": 20,
            "Environment": {"Variables": Match.object_like({"AIMASS_INTRA_OP_THREADS": "6"})},
        },
    )
    arm64.template.has_resource_properties("AWS::ApiGateway::Stage", {"StageName": "prod"})
    # The image is built for the function's instruction set.
    assets = json.loads(Path(arm64.outdir / "AiMass-Serving-prod.assets.json").read_text(encoding="utf-8"))
    assert [image["source"]["platform"] for image in assets["dockerImages"].values()] == ["linux/arm64"]


def test_default_image_platform(synthesized: Synthesized) -> None:
    assets = json.loads((synthesized.outdir / "AiMass-Serving-dev.assets.json").read_text(encoding="utf-8"))
    assert [image["source"]["platform"] for image in assets["dockerImages"].values()] == ["linux/amd64"]


def test_template_round_trips_through_assertions(synthesized: Synthesized) -> None:
    # Template.from_stack re-uses the synthesized assembly; both views agree.
    assert Template.from_stack(synthesized.stack).to_json() == synthesized.template_json
