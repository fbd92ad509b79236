"""The dashboard, the alarms and the topic they notify."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aimass.contract import METRIC_NAMESPACE as NAMESPACE
from aimass.contract import Metric, service_name
from infra.stacks.serving_stack import AUTHORIZER_LOGICAL_ID, function_logical_id
from models.catalogue import catalogue
from tests.infra.infra_synth import AUTHORIZER, DOCKERFILE_DOMAINS, Synthesized

CATALOGUE = catalogue()


def _dashboard_body(synthesized: Synthesized) -> dict[str, Any]:
    """The dashboard's JSON body, each reference written as ``${LogicalId}`` (``${AWS::Region}``)."""
    (dashboard,) = synthesized.resources_of_type("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    if isinstance(body, dict):
        body = "".join(part if isinstance(part, str) else f"${{{part['Ref']}}}" for part in body["Fn::Join"][1])
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def _graphed(synthesized: Synthesized) -> list[tuple[str, list[Any], str]]:
    """(widget title, metric without its options, statistic) of every graphed metric."""
    graphed = []
    for widget in _dashboard_body(synthesized)["widgets"]:
        if widget["type"] != "metric":
            continue
        for metric in widget["properties"]["metrics"]:
            *names, options = metric
            graphed.append((widget["properties"]["title"], names, options["stat"]))
    return graphed


def _alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in synthesized.resources_of_type("AWS::CloudWatch::Alarm").values()
    }


def _stage_id(synthesized: Synthesized) -> str:
    (stage_id,) = synthesized.resources_of_type("AWS::ApiGateway::Stage")
    return stage_id


# --- the dashboard ------------------------------------------------------------------------------


def test_dashboard_name_and_output(synthesized: Synthesized, fake_synthesized: Synthesized) -> None:
    (dashboard_id, dashboard), *_ = synthesized.resources_of_type("AWS::CloudWatch::Dashboard").items()
    assert dashboard["Properties"]["DashboardName"] == "aimass-dev"
    assert synthesized.template_json["Outputs"]["DashboardName"]["Value"] == {"Ref": dashboard_id}
    (fake,) = fake_synthesized.resources_of_type("AWS::CloudWatch::Dashboard").values()
    assert fake["Properties"]["DashboardName"] == "aimass-prod"


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_dashboard_has_every_emf_metric_of_every_function(synthesized: Synthesized, domain: str) -> None:
    graphed = _graphed(synthesized)
    service = ["service", service_name([domain])]
    by_service = {(names[1], stat) for _, names, stat in graphed if names[0] == NAMESPACE and names[2:] == service}
    assert {name for name, _ in by_service} == {metric.value for metric in Metric}
    # Latency percentiles per function.
    assert {("Latency", "p50"), ("Latency", "p99"), ("InferenceLatency", "p50"), ("InferenceLatency", "p99")} <= (
        by_service
    )
    assert {("Requests", "Sum"), ("Errors", "Sum"), ("ClientErrors", "Sum"), ("Units", "Sum")} <= by_service
    # Each of its models' p99 latency (dimensions service and model).
    models = sorted(entry.name for entry in CATALOGUE if entry.domain == domain)
    per_model = []
    for _, names, stat in graphed:
        dimensions = dict(zip(names[2::2], names[3::2], strict=True))
        if names[0] == NAMESPACE and set(dimensions) == {"service", "model"} and dimensions["service"] == service[1]:
            per_model.append((names[1], stat, dimensions["model"]))
    assert per_model == [("Latency", "p99", model) for model in models]
    # Lambda's own metrics of the function.
    function = ["FunctionName", f"${{{function_logical_id(domain)}}}"]
    lambda_metrics = {
        (names[1], stat) for _, names, stat in graphed if names[0] == "AWS/Lambda" and names[2:] == function
    }
    assert lambda_metrics == {("Errors", "Sum"), ("Throttles", "Sum"), ("Duration", "p99")}


def test_dashboard_has_the_authorizer(synthesized: Synthesized, edge_off_synthesized: Synthesized) -> None:
    function = ["FunctionName", f"${{{AUTHORIZER_LOGICAL_ID}}}"]
    graphed = {(names[1], stat) for _, names, stat in _graphed(synthesized) if names[2:] == function}
    assert graphed == {
        ("Invocations", "Sum"),
        ("Errors", "Sum"),
        ("Throttles", "Sum"),
        ("Duration", "p50"),
        ("Duration", "p99"),
    }
    assert not any(title.startswith("API key authorizer") for title, _, _ in _graphed(edge_off_synthesized))


def test_dashboard_has_the_api_stage(synthesized: Synthesized) -> None:
    stage = ["ApiName", "aimass-dev", "Stage", f"${{{_stage_id(synthesized)}}}"]
    api = {(names[1], stat) for _, names, stat in _graphed(synthesized) if names[0] == "AWS/ApiGateway"}
    assert api == {
        ("Count", "Sum"),
        ("4XXError", "Sum"),
        ("5XXError", "Sum"),
        ("Latency", "p50"),
        ("Latency", "p99"),
        ("IntegrationLatency", "p99"),
    }
    for _, names, _ in _graphed(synthesized):
        if names[0] == "AWS/ApiGateway":
            assert names[2:] == stage


def test_dashboard_widgets_fit_the_grid(synthesized: Synthesized) -> None:
    for widget in _dashboard_body(synthesized)["widgets"]:
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "${AWS::Region}"


# --- alarms -------------------------------------------------------------------------------------


def test_alarm_names(synthesized: Synthesized) -> None:
    expected = {"aimass-dev-api-5xx-rate", "aimass-dev-authorizer-errors", "aimass-dev-authorizer-throttles"} | {
        f"aimass-dev-{domain}-{kind}"
        for domain in DOCKERFILE_DOMAINS
        for kind in ("errors", "throttles", "latency-p99")
    }
    assert set(_alarms(synthesized)) == expected


def test_every_alarm_notifies_the_topic_and_tolerates_silence(synthesized: Synthesized) -> None:
    topic_id = synthesized.output_ref("AlarmTopicArn")
    for alarm in _alarms(synthesized).values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        # No traffic is not an incident.
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmDescription"]


@pytest.mark.parametrize("domain", [*DOCKERFILE_DOMAINS, AUTHORIZER])
def test_function_failure_alarms(synthesized: Synthesized, domain: str) -> None:
    alarms = _alarms(synthesized)
    for kind, metric in (("errors", "Errors"), ("throttles", "Throttles")):
        alarm = alarms[f"aimass-dev-{domain}-{kind}"]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == ("AWS/Lambda", metric, "Sum")
        assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_logical_id(domain)}}]
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanOrEqualToThreshold", 1)
        # Any in two of the last three 5-minute periods.
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (300, 3, 2)


@pytest.mark.parametrize("domain", DOCKERFILE_DOMAINS)
def test_function_latency_alarm(synthesized: Synthesized, domain: str) -> None:
    alarm = _alarms(synthesized)[f"aimass-dev-{domain}-latency-p99"]
    (query,) = alarm["Metrics"]
    assert query["MetricStat"] == {
        "Metric": {
            "Namespace": NAMESPACE,
            "MetricName": "Latency",
            "Dimensions": [{"Name": "service", "Value": service_name([domain])}],
        },
        "Period": 300,
        "Stat": "p99",
    }
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 5000)
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 3)
    assert alarm["EvaluateLowSampleCountPercentile"] == "ignore"


def test_latency_alarm_threshold_from_context(fake_synthesized: Synthesized) -> None:
    alarms = _alarms(fake_synthesized)
    assert {name for name in alarms if name.endswith("latency-p99")} == {
        "aimass-prod-text-latency-p99",
        "aimass-prod-toy-latency-p99",
    }
    for name, alarm in alarms.items():
        if name.endswith("latency-p99"):
            assert alarm["Threshold"] == 2500


def test_api_5xx_rate_alarm(synthesized: Synthesized) -> None:
    alarm = _alarms(synthesized)["aimass-dev-api-5xx-rate"]
    queries = {query["Id"]: query for query in alarm["Metrics"]}
    (rate,) = [query for query in queries.values() if query.get("ReturnData", True) and "Expression" in query]
    assert rate["Expression"] == "IF(requests >= 20, 100 * errors / requests, 0)"
    stage = [{"Name": "ApiName", "Value": "aimass-dev"}, {"Name": "Stage", "Value": {"Ref": _stage_id(synthesized)}}]
    for name, metric in (("requests", "Count"), ("errors", "5XXError")):
        assert queries[name]["ReturnData"] is False
        assert queries[name]["MetricStat"] == {
            "Metric": {"Namespace": "AWS/ApiGateway", "MetricName": metric, "Dimensions": stage},
            "Period": 300,
            "Stat": "Sum",
        }
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 5)
    assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (3, 2)


# --- the topic ----------------------------------------------------------------------------------


def test_alarm_topic_is_encrypted_and_tls_only(synthesized: Synthesized) -> None:
    topic_id = synthesized.output_ref("AlarmTopicArn")
    topic = synthesized.resources[topic_id]["Properties"]
    key_id = topic["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = synthesized.resources[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    # CloudWatch encrypts what it publishes with the topic's key, and may use no other.
    assert {
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Resource": "*",
    } in key["KeyPolicy"]["Statement"]
    (policy,) = synthesized.resources_of_type("AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert {
        "Action": "sns:Publish",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        "Effect": "Deny",
        "Principal": "*",
        "Resource": {"Ref": topic_id},
        "Sid": "AllowPublishThroughSSLOnly",
    } in statements
    (publish,) = [s for s in statements if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Action"] == "sns:Publish"
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
