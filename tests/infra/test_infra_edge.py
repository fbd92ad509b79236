"""API keys at the edge: the authorizer, who must present a key, API Gateway's own answers in the AI Mass error
shape, the edge keys' IAM and what ``aimass:edgeAuthorizer=false`` leaves (the functions check keys alone)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfnlint.api import lint_file

from aimass.contract import ASK_FOR_KEY, is_open_path
from aimass.contract import OPEN_PATHS as OPEN
from infra.routes import OPEN_PATHS, SHARED_ROUTES
from infra.stacks.serving_stack import AUTHORIZER_LOGICAL_ID, TEXT_FUNCTION_LOGICAL_ID, function_logical_id
from tests.infra.infra_synth import DOCKERFILE_DOMAINS, Synthesized

# What a gateway response template may refer to, and a value for each (the authorizer's context is a fixed,
# JSON-safe sentence and code).
CONTEXT_VALUES = {
    "$context.requestId": "c0ffee00-0000-4000-8000-000000000000",
    "$context.authorizer.message": f"invalid API key; {ASK_FOR_KEY}",
    "$context.authorizer.code": "invalid_api_key",
}
# API Gateway's answers and what each must be: (status, error type, code).
GATEWAY_RESPONSES = {
    "ACCESS_DENIED": ("401", "invalid_request_error", "$context.authorizer.code"),
    "UNAUTHORIZED": ("401", "invalid_request_error", "invalid_api_key"),
    "AUTHORIZER_FAILURE": ("503", "server_error", "service_unavailable"),
    "AUTHORIZER_CONFIGURATION_ERROR": ("503", "server_error", "service_unavailable"),
    "THROTTLED": ("429", "requests", "rate_limit_exceeded"),
    "INVALID_API_KEY": ("403", "invalid_request_error", "key_not_at_edge"),
}


def _rest_api(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    ((api_id, api),) = synthesized.resources_of_type("AWS::ApiGateway::RestApi").items()
    return api_id, api["Properties"]


def _role_of(synthesized: Synthesized, function_id: str) -> str:
    role_id: str = synthesized.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_id


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _pairs(statements: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(action, resource) of every Allow statement, however CDK grouped them."""
    pairs = set()
    for statement in statements:
        assert statement["Effect"] == "Allow" and "Condition" not in statement, statement
        for action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                pairs.add((action, json.dumps(resource, sort_keys=True)))
    return pairs


def _apigateway_arn(*path: Any) -> str:
    """``arn:<partition>:apigateway:<region>::<path>`` as CDK writes it (a Fn::Join), serialized."""
    parts: list[Any] = ["arn:", {"Ref": "AWS::Partition"}, ":apigateway:", {"Ref": "AWS::Region"}, "::"]
    for part in path:
        if isinstance(part, str) and isinstance(parts[-1], str):
            parts[-1] += part
        else:
            parts.append(part)
    return json.dumps({"Fn::Join": ["", parts]}, sort_keys=True)


def _edge_key_grants(synthesized: Synthesized) -> set[tuple[str, str]]:
    """What giving keys their edge keys and taking them back needs, for this template's usage plans."""
    usage_plans = sorted(synthesized.resources_of_type("AWS::ApiGateway::UsagePlan"))
    assert usage_plans
    return {
        ("apigateway:POST", _apigateway_arn("/apikeys")),  # CreateApiKey
        *(("apigateway:POST", _apigateway_arn("/usageplans/", {"Ref": plan}, "/keys")) for plan in usage_plans),
        ("apigateway:GET", _apigateway_arn("/apikeys")),  # GetApiKeys (nameQuery)
        ("apigateway:GET", _apigateway_arn("/usageplans")),  # GetUsagePlans (find a plan's by its tag)
        ("apigateway:GET", _apigateway_arn("/apikeys/*")),
        ("apigateway:DELETE", _apigateway_arn("/apikeys/*")),  # DeleteApiKey
    }


def _apigateway_statements(synthesized: Synthesized, role_id: str) -> list[dict[str, Any]]:
    return [s for s in synthesized.role_statements(role_id) if "apigateway:" in json.dumps(s["Action"])]


def _covers(route_path: str, path: str) -> bool:
    """Whether API Gateway routes ``path`` to the resource ``route_path`` (literal parts, {var}, greedy {var+})."""
    pattern = "".join(
        "/[^/]+" if part.startswith("{") and not part.endswith("+}") else "/.+" if part.endswith("+}") else f"/{part}"
        for part in route_path.strip("/").split("/")
    )
    return re.fullmatch(pattern, path) is not None


# --- the authorizer ------------------------------------------------------------------------------


def test_one_request_authorizer_without_cache_or_identity_sources(synthesized: Synthesized) -> None:
    # GIVEN the default app (aimass:edgeAuthorizer true)
    ((authorizer_id, authorizer),) = synthesized.resources_of_type("AWS::ApiGateway::Authorizer").items()
    properties = authorizer["Properties"]
    api_id, _ = _rest_api(synthesized)
    # THEN one REQUEST authorizer of this API, never cached: a key may come in either of two headers, and a
    # cache would demand both (every identity source), so there are none.
    assert properties["Type"] == "REQUEST"
    assert properties["RestApiId"] == {"Ref": api_id}
    assert properties["AuthorizerResultTtlInSeconds"] == 0
    assert "IdentitySource" not in properties
    assert properties["Name"] == "aimass-dev-keys"
    # AND it invokes the authorizer function, which API Gateway may invoke for this authorizer only
    assert f'"{AUTHORIZER_LOGICAL_ID}", "Arn"' in json.dumps(properties["AuthorizerUri"])
    (permission,) = [
        p["Properties"]
        for p in synthesized.resources_of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [AUTHORIZER_LOGICAL_ID, "Arn"]}
    ]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    source = json.dumps(permission["SourceArn"])
    assert f'{{"Ref": "{api_id}"}}, "/authorizers/", {{"Ref": "{authorizer_id}"}}' in source


def test_the_authorizer_function(synthesized: Synthesized) -> None:
    function = synthesized.resources[AUTHORIZER_LOGICAL_ID]
    properties = function["Properties"]
    # Built from its own Dockerfile and sized by its function.toml, like a domain's function.
    assert function["Metadata"]["aws:asset:dockerfile-path"] == "functions/authorizer/Dockerfile"
    assert (properties["MemorySize"], properties["Timeout"], properties["Architectures"]) == (512, 3, ["x86_64"])
    assert properties["PackageType"] == "Image"
    assert properties["TracingConfig"] == {"Mode": "Active"}
    # It reads keys and the plans, nothing else: no model store, no usage or counters table, no API id.
    variables = properties["Environment"]["Variables"]
    assert variables == {
        "AIMASS_METERING": "dynamodb",
        "AIMASS_KEYS_TABLE": {"Ref": synthesized.output_ref("KeysTableName")},
        "AIMASS_PLANS": synthesized.resources[TEXT_FUNCTION_LOGICAL_ID]["Properties"]["Environment"]["Variables"][
            "AIMASS_PLANS"
        ],
    }


def test_the_authorizer_may_only_read_keys(synthesized: Synthesized) -> None:
    role_id = _role_of(synthesized, AUTHORIZER_LOGICAL_ID)
    log_group = synthesized.resources[AUTHORIZER_LOGICAL_ID]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    keys_table = synthesized.output_ref("KeysTableName")
    metering_key = synthesized.resources[keys_table]["Properties"]["SSESpecification"]["KMSMasterKeyId"]
    via_dynamodb = {
        "StringEquals": {"kms:ViaService": {"Fn::Join": ["", ["dynamodb.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}}
    }
    expected = [
        {"Action": "dynamodb:GetItem", "Effect": "Allow", "Resource": {"Fn::GetAtt": [keys_table, "Arn"]}},
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Condition": via_dynamodb,
            "Effect": "Allow",
            "Resource": metering_key,
        },
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
        },
        {"Action": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], "Effect": "Allow", "Resource": "*"},
    ]
    assert sorted(synthesized.role_statements(role_id), key=json.dumps) == sorted(expected, key=json.dumps)


# --- who must present a key ----------------------------------------------------------------------


def test_open_routes_are_the_shared_health_and_docs_routes() -> None:
    assert {"/v2", "/v2/health/{proxy+}", "/docs", "/openapi.json", "/console", "/console/{proxy+}"} == OPEN_PATHS
    assert OPEN_PATHS.issubset(path for path, _ in SHARED_ROUTES)


def test_what_is_open_at_the_edge_is_open_in_the_app(synthesized: Synthesized) -> None:
    open_paths = {
        path
        for (_, path), method in synthesized.api_methods().items()
        if not method["Properties"].get("ApiKeyRequired")
    }
    assert open_paths == set(OPEN_PATHS)
    for route_path in open_paths:
        covered = {path for path in OPEN if _covers(route_path, path)}
        if "{" not in route_path:
            # A literal open route is one the app leaves open.
            assert covered == {route_path}
        else:
            # A greedy one (/v2/health/{proxy+}) holds the app's open paths under it; anything else there is
            # refused by the app itself, which checks the key of every path not in OPEN.
            # Or every path under it is open (the console's files: aimass.contract.OPEN_PREFIXES).
            assert covered or is_open_path(route_path.split("{")[0]), route_path
            assert all(path.startswith(route_path.split("{")[0]) for path in covered)
    # And the reverse: no path the app leaves open needs a key at the edge (it would be refused there).
    for path in OPEN:
        routes = [route_path for (_, route_path) in synthesized.api_methods() if _covers(route_path, path)]
        assert all(route_path in open_paths for route_path in routes), (path, routes)


def test_every_other_method_asks_the_authorizer_and_requires_the_edge_key(synthesized: Synthesized) -> None:
    ((authorizer_id, _),) = synthesized.resources_of_type("AWS::ApiGateway::Authorizer").items()
    keyed = 0
    for (verb, path), method in synthesized.api_methods().items():
        properties = method["Properties"]
        if path in OPEN_PATHS:
            assert properties["AuthorizationType"] == "NONE", (verb, path)
            assert "AuthorizerId" not in properties, (verb, path)
            assert properties.get("ApiKeyRequired", False) is False, (verb, path)
        else:
            assert properties["AuthorizationType"] == "CUSTOM", (verb, path)
            assert properties["AuthorizerId"] == {"Ref": authorizer_id}, (verb, path)
            assert properties["ApiKeyRequired"] is True, (verb, path)
            keyed += 1
    # Every model, the admin API, usage reports, the listings and each domain's task prefix.
    assert keyed >= len(DOCKERFILE_DOMAINS) + 4


def test_the_authorizer_names_the_edge_key(synthesized: Synthesized) -> None:
    _, api = _rest_api(synthesized)
    # Not the x-api-key header: a client never sends an edge key, the authorizer's usageIdentifierKey names it.
    assert api["ApiKeySourceType"] == "AUTHORIZER"


# --- API Gateway's own answers -------------------------------------------------------------------


def _gateway_responses(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        response["Properties"]["ResponseType"]: response["Properties"]
        for response in synthesized.resources_of_type("AWS::ApiGateway::GatewayResponse").values()
    }


def _render(template: str) -> dict[str, Any]:
    for variable, value in CONTEXT_VALUES.items():
        template = template.replace(variable, value)
    assert "$" not in template, template
    rendered: dict[str, Any] = json.loads(template)
    return rendered


def test_gateway_responses_are_exactly_these(synthesized: Synthesized) -> None:
    assert set(_gateway_responses(synthesized)) == set(GATEWAY_RESPONSES)


@pytest.mark.parametrize("response_type", sorted(GATEWAY_RESPONSES))
def test_gateway_responses_speak_the_ai_mass_error_shape(synthesized: Synthesized, response_type: str) -> None:
    status, error_type, code = GATEWAY_RESPONSES[response_type]
    api_id, _ = _rest_api(synthesized)
    response = _gateway_responses(synthesized)[response_type]
    assert response["RestApiId"] == {"Ref": api_id}
    assert response["StatusCode"] == status
    assert response["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
    (template,) = response["ResponseTemplates"].values()
    assert list(response["ResponseTemplates"]) == ["application/json"]
    # WHEN API Gateway fills in its variables THEN the body is the shape every AI Mass error has
    body = _render(template)
    assert body == {
        "error": {
            "message": body["error"]["message"],
            "type": error_type,
            "code": CONTEXT_VALUES.get(code, code),
            "param": None,
        },
        "request_id": CONTEXT_VALUES["$context.requestId"],
    }
    assert body["error"]["message"]


def test_a_refused_key_is_answered_with_the_authorizers_reason(synthesized: Synthesized) -> None:
    response = _gateway_responses(synthesized)["ACCESS_DENIED"]
    body = json.loads(response["ResponseTemplates"]["application/json"])
    assert body["error"]["message"] == "$context.authorizer.message"
    assert body["error"]["code"] == "$context.authorizer.code"
    for refused in ("ACCESS_DENIED", "UNAUTHORIZED"):
        parameters = _gateway_responses(synthesized)[refused]["ResponseParameters"]
        assert parameters["gatewayresponse.header.WWW-Authenticate"] == "'Bearer realm=\"aimass\"'"


def test_throttled_requests_are_told_when_to_retry(synthesized: Synthesized) -> None:
    parameters = _gateway_responses(synthesized)["THROTTLED"]["ResponseParameters"]
    assert parameters["gatewayresponse.header.Retry-After"] == "'1'"


def test_gateway_messages_say_what_to_do_and_nothing_about_keys(synthesized: Synthesized) -> None:
    messages = {
        response_type: json.loads(response["ResponseTemplates"]["application/json"])["error"]["message"]
        for response_type, response in _gateway_responses(synthesized).items()
    }
    assert "aimass keys sync-edge" in messages["INVALID_API_KEY"]
    assert "retry" in messages["AUTHORIZER_FAILURE"] and "Retry-After" in messages["THROTTLED"]
    for message in messages.values():
        assert "aimass-" not in message  # no edge key name, no API id


# --- the edge keys ---------------------------------------------------------------------------------


def test_usage_plans_are_tagged_with_their_plan(synthesized: Synthesized) -> None:
    tags = {
        usage_plan["Properties"]["UsagePlanName"]: {
            tag["Key"]: tag["Value"] for tag in usage_plan["Properties"]["Tags"]
        }
        for usage_plan in synthesized.resources_of_type("AWS::ApiGateway::UsagePlan").values()
    }
    assert {name: tag["aimass:plan"] for name, tag in tags.items()} == {
        "aimass-dev-default": "default",
        "aimass-dev-free": "free",
    }


def test_usage_plan_tags_follow_the_context(fake_synthesized: Synthesized) -> None:
    tags = {
        usage_plan["Properties"]["UsagePlanName"]: {
            tag["Key"]: tag["Value"] for tag in usage_plan["Properties"]["Tags"]
        }
        for usage_plan in fake_synthesized.resources_of_type("AWS::ApiGateway::UsagePlan").values()
    }
    assert {name: tag["aimass:plan"] for name, tag in tags.items()} == {
        "aimass-prod-trial": "trial",
        "aimass-prod-pro": "pro",
        "aimass-prod-enterprise": "enterprise",
    }


def test_the_front_function_is_told_the_api(synthesized: Synthesized, fake_synthesized: Synthesized) -> None:
    api_id, _ = _rest_api(synthesized)
    for domain in DOCKERFILE_DOMAINS:
        variables = synthesized.resources[function_logical_id(domain)]["Properties"]["Environment"]["Variables"]
        if domain == "text":
            assert variables["AIMASS_EDGE_API_ID"] == {"Ref": api_id}
        else:
            assert "AIMASS_EDGE_API_ID" not in variables, domain
    # It follows the front domain.
    fake_api_id, _ = _rest_api(fake_synthesized)
    toy = fake_synthesized.resources["ToyFunction"]["Properties"]["Environment"]["Variables"]
    assert toy["AIMASS_EDGE_API_ID"] == {"Ref": fake_api_id}
    assert (
        "AIMASS_EDGE_API_ID" not in fake_synthesized.resources["TextFunction"]["Properties"]["Environment"]["Variables"]
    )


def test_rest_api_id_output(synthesized: Synthesized) -> None:
    api_id, _ = _rest_api(synthesized)
    output = synthesized.template_json["Outputs"]["RestApiId"]
    assert output == {"Description": "AIMASS_EDGE_API_ID for aimass keys", "Value": {"Ref": api_id}}


@pytest.mark.parametrize("who", ["front function", "AdminRole"])
def test_key_administrators_may_mirror_keys_at_the_edge(synthesized: Synthesized, who: str) -> None:
    role_id = (
        _role_of(synthesized, TEXT_FUNCTION_LOGICAL_ID)
        if who == "front function"
        else synthesized.output_ref("AdminRoleArn")
    )
    assert _pairs(_apigateway_statements(synthesized, role_id)) == _edge_key_grants(synthesized)


def test_no_one_else_touches_api_gateway(synthesized: Synthesized) -> None:
    allowed = {_role_of(synthesized, TEXT_FUNCTION_LOGICAL_ID), synthesized.output_ref("AdminRoleArn")}
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        if "apigateway:" in json.dumps(policy["Properties"]["PolicyDocument"]):
            assert {role["Ref"] for role in policy["Properties"]["Roles"]} == allowed


def test_edge_key_grants_are_a_policy_of_their_own(synthesized: Synthesized) -> None:
    # The grants name the usage plans, which depend on the stage, the deployment, the methods and so the
    # functions; a function depends on its role's default policy, so they must not be in it (a cycle).
    (policy_id,) = [
        key
        for key, policy in synthesized.resources_of_type("AWS::IAM::Policy").items()
        if "apigateway:" in json.dumps(policy["Properties"]["PolicyDocument"])
    ]
    for function in synthesized.resources_of_type("AWS::Lambda::Function").values():
        assert policy_id not in function.get("DependsOn", [])
    assert "usageplans" not in json.dumps(
        [policy for key, policy in synthesized.resources_of_type("AWS::IAM::Policy").items() if key != policy_id]
    )


def _references(value: Any) -> set[str]:
    if isinstance(value, dict):
        found: set[str] = set()
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                if isinstance(inner, list):
                    found |= _references(inner[1])
            else:
                found |= _references(inner)
        return found
    if isinstance(value, list):
        return set().union(*(_references(inner) for inner in value)) if value else set()
    return set()


@pytest.mark.parametrize("edge", [True, False], ids=["edge", "edge-off"])
def test_no_circular_dependency(synthesized: Synthesized, edge_off_synthesized: Synthesized, edge: bool) -> None:
    # CloudFormation refuses a template whose resources depend on each other in a circle.
    resources = (synthesized if edge else edge_off_synthesized).resources
    graph = {
        key: (_references(resource.get("Properties", {})) | set(_as_list(resource.get("DependsOn", []))))
        & set(resources)
        for key, resource in resources.items()
    }
    done: set[str] = set()
    for start in graph:
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, bool]] = [(start, False)]
        while stack:
            node, leaving = stack.pop()
            if leaving:
                on_path.discard(node)
                path.pop()
                done.add(node)
                continue
            if node in done:
                continue
            assert node not in on_path, f"cycle: {' -> '.join([*path[path.index(node) :], node])}"
            on_path.add(node)
            path.append(node)
            stack.append((node, True))
            stack.extend((dependency, False) for dependency in graph[node] if dependency not in done)


# --- aimass:edgeAuthorizer=false: the functions check keys alone ---------------------------------------


def test_edge_off_synthesizes_cleanly(edge_off_synthesized: Synthesized) -> None:
    assert edge_off_synthesized.synth_error is None, edge_off_synthesized.synth_error
    matches = lint_file(edge_off_synthesized.template_path)
    assert [f"{m.rule.id} {m.message} ({m.path})" for m in matches] == []


def test_edge_off_has_no_authorizer(edge_off_synthesized: Synthesized) -> None:
    resources = edge_off_synthesized.resources
    assert AUTHORIZER_LOGICAL_ID not in resources
    for cfn_type in ("AWS::ApiGateway::Authorizer", "AWS::ApiGateway::GatewayResponse"):
        assert not edge_off_synthesized.resources_of_type(cfn_type), cfn_type
    # The domains' functions and the batch events function.
    assert len(edge_off_synthesized.resources_of_type("AWS::Lambda::Function")) == len(DOCKERFILE_DOMAINS) + 1
    _, api = _rest_api(edge_off_synthesized)
    assert "ApiKeySourceType" not in api  # HEADER, API Gateway's default
    for key, method in edge_off_synthesized.api_methods().items():
        assert method["Properties"]["AuthorizationType"] == "NONE", key
        assert method["Properties"].get("ApiKeyRequired", False) is False, key
    alarms = {
        alarm["Properties"]["AlarmName"]
        for alarm in edge_off_synthesized.resources_of_type("AWS::CloudWatch::Alarm").values()
    }
    assert not any("authorizer" in name for name in alarms)


def test_edge_off_mirrors_no_keys(edge_off_synthesized: Synthesized) -> None:
    for policy in edge_off_synthesized.resources_of_type("AWS::IAM::Policy").values():
        assert "apigateway:" not in json.dumps(policy["Properties"]["PolicyDocument"])
    for function in edge_off_synthesized.resources_of_type("AWS::Lambda::Function").values():
        assert "AIMASS_EDGE_API_ID" not in function["Properties"]["Environment"]["Variables"]
    assert "RestApiId" not in edge_off_synthesized.template_json["Outputs"]
    # The usage plans stay, tagged, and say they are best effort.
    usage_plans = edge_off_synthesized.resources_of_type("AWS::ApiGateway::UsagePlan").values()
    assert len(usage_plans) == 2
    for usage_plan in usage_plans:
        assert "best effort" in usage_plan["Properties"]["Description"]
        assert any(tag["Key"] == "aimass:plan" for tag in usage_plan["Properties"]["Tags"])
