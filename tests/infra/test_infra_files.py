"""The files bucket (OpenAI's Files API, /v1/files): encryption, privacy, lifecycle, retention, and the front
function's grants, the only ones on it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ServingConfig
from infra.stacks.serving_stack import AUTHORIZER_LOGICAL_ID, function_logical_id
from tests.infra.infra_synth import DOCKERFILE_DOMAINS, Synthesized

VIA_S3 = {"StringEquals": {"kms:ViaService": {"Fn::Join": ["", ["s3.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}}


def _bucket_id(synthesized: Synthesized) -> str:
    return synthesized.output_ref("FilesBucketName")


def _bucket(synthesized: Synthesized) -> dict[str, Any]:
    bucket = synthesized.resources[_bucket_id(synthesized)]
    assert bucket["Type"] == "AWS::S3::Bucket"
    return bucket


def _key_id(synthesized: Synthesized) -> str:
    (rule,) = _bucket(synthesized)["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    logical_id: str = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]["Fn::GetAtt"][0]
    return logical_id


def _role_of(synthesized: Synthesized, function_id: str) -> str:
    role_id: str = synthesized.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_id


def _files_statements(synthesized: Synthesized, role_id: str) -> list[dict[str, Any]]:
    """The role's statements on the files bucket or its key."""
    ids = (f'"{_bucket_id(synthesized)}"', f'"{_key_id(synthesized)}"')
    return [
        statement
        for statement in synthesized.role_statements(role_id)
        if any(logical_id in json.dumps(statement["Resource"]) for logical_id in ids)
    ]


def _expected_grants(synthesized: Synthesized) -> list[dict[str, Any]]:
    bucket_arn = {"Fn::GetAtt": [_bucket_id(synthesized), "Arn"]}
    return [
        # Upload (single or multipart), read and head, delete, abort an interrupted upload: objects only.
        {
            "Action": ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [bucket_arn, "/*"]]},
        },
        # A tenant's files are listed by prefix.
        {"Action": "s3:ListBucket", "Effect": "Allow", "Resource": bucket_arn},
        # The bucket's key, only through S3: a data key to write an object, Decrypt to read one.
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Condition": VIA_S3,
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [_key_id(synthesized), "Arn"]},
        },
    ]


# --- the bucket ---------------------------------------------------------------------------------


def test_files_bucket_is_encrypted_with_its_own_rotated_retained_key(synthesized: Synthesized) -> None:
    (rule,) = _bucket(synthesized)["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule == {
        "BucketKeyEnabled": True,
        "ServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Fn::GetAtt": [_key_id(synthesized), "Arn"]},
        },
    }
    key = synthesized.resources[_key_id(synthesized)]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["Description"] == "Encrypts tenants' files in the AI Mass files store"
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
    # No other resource is encrypted with it: not the model bucket's, the envelope key, nor the tables'.
    users = [
        logical_id
        for logical_id, resource in synthesized.resources.items()
        if resource["Type"] != "AWS::IAM::Policy" and f'"{_key_id(synthesized)}"' in json.dumps(resource)
    ]
    assert users == [_bucket_id(synthesized)]


def test_files_bucket_is_private_tls_only_unversioned_and_retained(synthesized: Synthesized) -> None:
    bucket = _bucket(synthesized)
    properties = bucket["Properties"]
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    # Files are immutable and deleted for good on request: no versions to keep.
    assert "VersioningConfiguration" not in properties
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    # A generated name per stack: the front function and operators are told it (env, output).
    assert "BucketName" not in properties
    (policy,) = [
        policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in synthesized.resources_of_type("AWS::S3::BucketPolicy").values()
        if policy["Properties"]["Bucket"] == {"Ref": _bucket_id(synthesized)}
    ]
    assert policy == [
        {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": [
                {"Fn::GetAtt": [_bucket_id(synthesized), "Arn"]},
                {"Fn::Join": ["", [{"Fn::GetAtt": [_bucket_id(synthesized), "Arn"]}, "/*"]]},
            ],
        }
    ]


def test_files_bucket_logs_access_beside_the_model_bucket(synthesized: Synthesized) -> None:
    logging = _bucket(synthesized)["Properties"]["LoggingConfiguration"]
    models = synthesized.resources[synthesized.output_ref("ModelBucketName")]["Properties"]["LoggingConfiguration"]
    assert logging["DestinationBucketName"] == models["DestinationBucketName"]
    assert logging["LogFilePrefix"] == "files-bucket/"
    assert models["LogFilePrefix"] != logging["LogFilePrefix"]


@pytest.mark.parametrize(("fixture", "days"), [("synthesized", 30), ("fake_synthesized", 7)])
def test_files_expire_and_incomplete_uploads_are_aborted(
    request: pytest.FixtureRequest, fixture: str, days: int
) -> None:
    synthesized: Synthesized = request.getfixturevalue(fixture)
    assert _bucket(synthesized)["Properties"]["LifecycleConfiguration"] == {
        "Rules": [
            {
                "Id": "expire-files",
                "Status": "Enabled",
                "ExpirationInDays": days,
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }
        ]
    }


def test_the_default_expiry_is_the_configs() -> None:
    assert ServingConfig().files_expire_days == 30


# --- who may use it -----------------------------------------------------------------------------


def test_the_front_function_is_told_the_files_bucket(synthesized: Synthesized) -> None:
    variables = synthesized.resources[function_logical_id("text")]["Properties"]["Environment"]["Variables"]
    assert variables["AIMASS_FILES_BUCKET"] == {"Ref": _bucket_id(synthesized)}
    # A bucket of its own: files are stored from its root (AIMASS_FILES_PREFIX left at its default).
    assert "AIMASS_FILES_PREFIX" not in variables


def test_the_front_function_may_store_files(synthesized: Synthesized) -> None:
    statements = _files_statements(synthesized, _role_of(synthesized, function_logical_id("text")))
    assert sorted(statements, key=json.dumps) == sorted(_expected_grants(synthesized), key=json.dumps)


# The import function reads uploaded model files (test_infra_imports).
@pytest.mark.parametrize("domain", [domain for domain in DOCKERFILE_DOMAINS if domain not in ("text", "tensor")])
def test_other_functions_know_nothing_of_files(synthesized: Synthesized, domain: str) -> None:
    function = synthesized.resources[function_logical_id(domain)]["Properties"]
    assert "AIMASS_FILES_BUCKET" not in function["Environment"]["Variables"]
    assert _files_statements(synthesized, _role_of(synthesized, function_logical_id(domain))) == []


def test_the_grants_follow_the_front_domain(fake_synthesized: Synthesized) -> None:
    toy, text = (fake_synthesized.resources[name]["Properties"] for name in ("ToyFunction", "TextFunction"))
    assert toy["Environment"]["Variables"]["AIMASS_FILES_BUCKET"] == {"Ref": _bucket_id(fake_synthesized)}
    assert "AIMASS_FILES_BUCKET" not in text["Environment"]["Variables"]
    toy_role, text_role = _role_of(fake_synthesized, "ToyFunction"), _role_of(fake_synthesized, "TextFunction")
    assert sorted(_files_statements(fake_synthesized, toy_role), key=json.dumps) == sorted(
        _expected_grants(fake_synthesized), key=json.dumps
    )
    assert _files_statements(fake_synthesized, text_role) == []


def test_no_other_role_touches_the_files(synthesized: Synthesized) -> None:
    front = _role_of(synthesized, function_logical_id("text"))
    imports = _role_of(synthesized, function_logical_id("tensor"))
    ids = (f'"{_bucket_id(synthesized)}"', f'"{_key_id(synthesized)}"')
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        text = json.dumps(policy["Properties"]["PolicyDocument"])
        if any(logical_id in text for logical_id in ids):
            # The front function, the import function (reads only: test_infra_imports), or a batch worker or the
            # batch events function (test_infra_batch).
            allowed = {front, imports} | synthesized.batch_role_ids()
            assert {role["Ref"] for role in policy["Properties"]["Roles"]} <= allowed
    for role_id in (
        _role_of(synthesized, AUTHORIZER_LOGICAL_ID),
        synthesized.output_ref("ModelPublisherRoleArn"),
        synthesized.output_ref("AdminRoleArn"),
    ):
        assert _files_statements(synthesized, role_id) == []


def test_files_bucket_output(synthesized: Synthesized) -> None:
    output = synthesized.template_json["Outputs"]["FilesBucketName"]
    assert output["Value"] == {"Ref": _bucket_id(synthesized)}
    assert "/v1/files" in output["Description"]
