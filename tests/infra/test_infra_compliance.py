"""cdk-nag (AwsSolutions) and cfn-lint on the synthesized template."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from aws_cdk import Validations
from aws_cdk.assertions import Annotations, Match
from cfnlint.api import lint_file

from aimass.contract import IMPORTED_MODELS_PREFIX
from infra.constructs.private_bucket import bucket_logical_id
from infra.routes import OPEN_PATHS, SHARED_ROUTES
from infra.stacks.serving_stack import ServingStack
from models.catalogue import catalogue
from tests.infra.infra_synth import Synthesized


def _nag_report(synthesized: Synthesized) -> dict[str, Any]:
    reports: list[dict[str, Any]] = [
        report for report in synthesized.validation_report()["pluginReports"] if report["pluginName"] == "AwsSolutions"
    ]
    assert len(reports) == 1, "cdk-nag AwsSolutions did not run"
    return reports[0]


def _acknowledgements(synthesized: Synthesized) -> Iterator[tuple[str, str, str]]:
    """(construct path, acknowledged id, reason) of every cdk-nag acknowledgement in the assembly.

    CDK acknowledges a few template-validation findings of its own constructs (``CloudFormation-Validate::``,
    e.g. the VPC's availability zones and flow log): those are not ours and not cdk-nag's.
    """
    metadata_key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    artifact = synthesized.outdir / f"{synthesized.stack.artifact_id}.metadata.json"
    for path, entries in json.loads(artifact.read_text(encoding="utf-8")).items():
        for entry in entries:
            if entry["type"] == metadata_key:
                for rule_id, reason in entry["data"].items():
                    if not rule_id.startswith("CloudFormation-Validate::"):
                        yield path, rule_id, reason


def test_synth_passes_validation(synthesized: Synthesized) -> None:
    # cdk-nag 3 fails app.synth() on any finding that is not acknowledged.
    assert synthesized.synth_error is None, synthesized.synth_error


def test_no_unacknowledged_aws_solutions_findings(synthesized: Synthesized) -> None:
    report = _nag_report(synthesized)
    unacknowledged = [
        (violation["ruleName"], violation["severity"], [c["constructPath"] for c in violation["violatingConstructs"]])
        for violation in report.get("violations", [])
    ]
    assert unacknowledged == []
    assert report["conclusion"] == "success"


def test_no_aws_solutions_annotations(synthesized: Synthesized) -> None:
    annotations = Annotations.from_stack(synthesized.stack)
    pattern = Match.string_like_regexp("AwsSolutions-.*")
    assert annotations.find_error("*", pattern) == []
    assert annotations.find_warning("*", pattern) == []
    assert annotations.find_error("*", Match.any_value()) == []


def test_every_acknowledgement_has_a_reason_and_is_used(synthesized: Synthesized) -> None:
    # One finding id may be acknowledged on several constructs, each with its own reason.
    suppressed: dict[str, set[str]] = {}
    for violation in _nag_report(synthesized)["suppressedViolations"]:
        suppressed.setdefault(violation["acknowledgedId"], set()).add(violation["reason"])
    acknowledgements = list(_acknowledgements(synthesized))
    assert acknowledgements, "expected acknowledged findings (APIG4, IAM5, ...)"
    for path, rule_id, reason in acknowledgements:
        assert rule_id.startswith("AwsSolutions::AwsSolutions-"), (path, rule_id)
        assert len(reason) >= 40, (path, rule_id, reason)
        # A stale acknowledgement (rule no longer raised) would hide a future regression.
        assert rule_id in suppressed, f"{rule_id} acknowledged at {path} but cdk-nag raised no such finding"
        assert reason in suppressed[rule_id]


def test_expected_acknowledgements(synthesized: Synthesized) -> None:
    rules = {rule_id.split("::", 1)[1] for _, rule_id, _ in _acknowledgements(synthesized)}
    assert {"AwsSolutions-APIG4", "AwsSolutions-COG4", "AwsSolutions-IAM5[Resource::*]"} <= rules
    # Object reads are scoped to each model's prefix: one acknowledged wildcard per catalogued model
    # (its versions), and none for wildcard actions.
    stack = synthesized.stack
    assert isinstance(stack, ServingStack)
    models = bucket_logical_id(stack.models.bucket)
    prefixes = {rule for rule in rules if re.fullmatch(rf"AwsSolutions-IAM5\[Resource::<{models}\.Arn>/.+/\*\]", rule)}
    # ...and the imported models' prefix, where the import function keeps them (its catalogued example too).
    expected = {e.name for e in catalogue() if e.domain != stack.import_domain} | {IMPORTED_MODELS_PREFIX.strip("/")}
    assert {re.sub(r".*\.Arn>/(.+)/\*\]$", r"\1", rule) for rule in prefixes} == expected
    assert not any(rule.startswith("AwsSolutions-IAM5[Action::") for rule in rules)
    # A whole bucket's objects only for the publisher role, which publishes every model, for the front function,
    # which stores every tenant's files (test_infra_files), and for the batch workers and the batch events function,
    # which read a batch's input file and write its output files (test_infra_batch).
    bucket_wide = sorted(
        path
        for path, rule_id, _ in _acknowledgements(synthesized)
        if re.fullmatch(r"AwsSolutions::AwsSolutions-IAM5\[Resource::<\w+\.Arn>/\*\]", rule_id)
    )
    front_role = stack.functions[stack.config.front_domain].role.node.path
    # The import function reads (only) any tenant's upload: a model file to import (test_infra_imports).
    imports_role = stack.functions[stack.config.import_domain].role.node.path
    batch_roles = [f"/{job.role.node.path}" for job in stack.batch.jobs.values()] + [
        f"/{stack.batch_events.role.node.path}"
    ]
    expected_wide = [f"/{stack.node.id}/ModelPublisherRole", f"/{front_role}", f"/{imports_role}", *batch_roles]
    assert bucket_wide == sorted(expected_wide)
    # Fixed rather than acknowledged: logging, encryption, TLS, key rotation, basic-execution policy,
    # point-in-time recovery of the metering tables, the alarm topic's KMS key and TLS-only policy.
    fixed = {
        "S1",
        "S10",
        "KMS5",
        "APIG1",
        "APIG6",
        "DDB3",
        "SNS2",
        "SNS3",
        "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
    }
    assert not {f"AwsSolutions-{rule}" for rule in fixed} & rules


def test_only_the_open_methods_are_acknowledged_as_public(
    synthesized: Synthesized, edge_off_synthesized: Synthesized
) -> None:
    # GIVEN the edge authorizer: every method but the open routes' has it, so APIG4 (no authorization) is
    # acknowledged on each open method alone, and COG4 (no Cognito) on the API.
    def acknowledged(s: Synthesized, rule: str) -> list[str]:
        return sorted(
            path for path, rule_id, _ in _acknowledgements(s) if rule_id == f"AwsSolutions::AwsSolutions-{rule}"
        )

    api = f"/{synthesized.stack.node.id}/Api/RestApi"
    open_methods = [
        f"{api}/Default{path}/{method}" for path, methods in SHARED_ROUTES if path in OPEN_PATHS for method in methods
    ]
    assert acknowledged(synthesized, "APIG4") == sorted(open_methods)
    assert acknowledged(synthesized, "COG4") == [api]
    # WITHOUT it, no method has API Gateway authorization: both on the API.
    assert acknowledged(edge_off_synthesized, "APIG4") == acknowledged(edge_off_synthesized, "COG4") == [api]


def test_cfn_lint_is_clean(synthesized: Synthesized) -> None:
    matches = lint_file(synthesized.template_path)
    assert [f"{m.rule.id} {m.message} ({m.path})" for m in matches] == []
