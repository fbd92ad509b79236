"""The public HTTPS API: an API Gateway REST API in front of the domain functions, and its API key authorizer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aws, Duration, Tags
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from aimass.contract import API_INTEGRATION_TIMEOUT_S, PLAN_TAG
from infra.config import PlanConfig
from infra.constructs.gateway_errors import GATEWAY_ERRORS
from infra.nag import acknowledge
from infra.routes import Route

INTEGRATION_TIMEOUT = Duration.seconds(API_INTEGRATION_TIMEOUT_S)
COGNITO_IS_FOR_PEOPLE = (
    "Callers are services holding AI Mass API keys (Authorization: Bearer or x-api-key), checked against the "
    "DynamoDB keys table (hashed secrets, scopes, plans, expiry, revocation) by a Lambda authorizer and again by "
    "the functions. Cognito user pools are for people signing in, not for machine API keys."
)
OPEN_BY_DESIGN = (
    "The open routes only (/v2 server metadata, /v2/health/..., /docs, /openapi.json): load balancers, uptime "
    "probes and people without a key yet must reach them. They run no model and bill nothing; every other "
    "method has the API key authorizer and requires the key's edge key, and the functions check the key again "
    "(defense in depth, and for direct invocations)."
)
AUTH_IN_FUNCTIONS = (
    "The edge authorizer is off (aimass:edgeAuthorizer=false): callers are authenticated by the functions, not by "
    "API Gateway. Every model route requires an AI Mass API key (Authorization: Bearer or x-api-key) checked "
    "against the DynamoDB keys table (hashed secrets, scopes, plans, revocation), and every request is metered "
    "per tenant; the stage's throttle bounds what reaches them. Cognito user pools are for people signing in, not "
    "for machine API keys."
)


class ServingApi(Construct):
    """REST API (v1) routing each path of the route table to its domain's function (Lambda proxy).

    ``routes`` is ``infra.routes.route_table(...)``: one resource and method per row, nothing else.
    The paths are the ones the app serves locally, so the app routes within a function and API
    Gateway only picks the function.

    With ``authorizer`` (the API key authorizer's function), every method but the open routes' first asks it:
    a refused key is answered at the edge (``GATEWAY_ERRORS``), an accepted one names its edge key
    (``usageIdentifierKey``, API key source AUTHORIZER), and the usage plan of the key's plan throttles it.
    Without it, every request reaches the functions, which check keys themselves.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes: Sequence[Route],
        handlers: Mapping[str, lambda_.IFunction],
        streaming: frozenset[str] = frozenset(),
        stage_name: str,
        throttle_rate_limit: float,
        throttle_burst_limit: int,
        plans: Mapping[str, PlanConfig],
        log_retention: logs.RetentionDays,
        authorizer: lambda_.IFunction | None = None,
    ) -> None:
        super().__init__(scope, construct_id)

        self.access_log_group = logs.LogGroup(self, "AccessLogs", retention=log_retention)

        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"aimass-{stage_name}",
            description="AI Mass: trained models behind one pay-per-request HTTPS API",
            # Callers are services rather than browsers spread over the world; a regional
            # endpoint avoids the hidden CloudFront hop of an edge-optimized one.
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Every request body is passed to Lambda base64-encoded (isBase64Encoded=true) and
            # Mangum decodes it, so binary tensor payloads (application/octet-stream, KServe
            # binary extension) arrive byte-exact. Responses Mangum base64-encodes (non-text
            # content types) are decoded back to bytes for the caller.
            binary_media_types=["*/*"],
            # Access and execution logging need the account's API Gateway CloudWatch role.
            cloud_watch_role=True,
            # The authorizer names each caller's edge key; a client never sends (or knows) one.
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER if authorizer is not None else None,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                access_log_destination=apigw.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                # Execution logs for errors only, never request or response bodies.
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                tracing_enabled=True,
                throttling_rate_limit=throttle_rate_limit,
                throttling_burst_limit=throttle_burst_limit,
            ),
        )
        # RestApi adds its own "Endpoint" output with a generated id; the stack exports ApiUrl.
        self.rest_api.node.try_remove_child("Endpoint")

        # Bodies are validated by the app (pydantic, binary tensor checks); API Gateway checks
        # what it can see: the path parameters ({proxy+}) are present.
        validator = self.rest_api.add_request_validator(
            "RequestValidator",
            request_validator_name="path-parameters",
            validate_request_parameters=True,
            validate_request_body=False,
        )
        self.authorizer = self._authorizer(authorizer) if authorizer is not None else None
        integrations = {
            domain: apigw.LambdaIntegration(
                handler,
                proxy=True,
                timeout=INTEGRATION_TIMEOUT,
                # A streaming function's answer reaches the client chunk by chunk (a generated text as it is
                # written); every other function's is relayed whole, as it always was.
                response_transfer_mode=apigw.ResponseTransferMode.STREAM if domain in streaming else None,
                # One invoke permission per function, for this API, instead of one per method: a
                # function's resource policy is capped at 20 KB, which per-method permissions (about
                # 400 bytes each, two per model) would exceed at a few dozen models. Only this API's
                # methods can use it, and each method integrates with exactly one function.
                scope_permission_to_method=False,
            )
            for domain, handler in sorted(handlers.items())
        }
        for route in routes:
            if route.domain not in integrations:
                raise ValueError(f"route {route.path}: no function for domain {route.domain!r}")
            resource = self.rest_api.root.resource_for_path(route.path)
            # Path variables ({proxy+}) are required: the validator rejects a request without them.
            variables = [part.strip("{}+") for part in route.path.split("/") if part.startswith("{")]
            keyed = self.authorizer is not None and not route.is_open
            for method in route.methods:
                added = resource.add_method(
                    method,
                    integrations[route.domain],
                    request_validator=validator,
                    request_parameters={f"method.request.path.{name}": True for name in variables} or None,
                    authorizer=self.authorizer if keyed else None,
                    api_key_required=keyed,
                )
                if self.authorizer is not None and route.is_open:
                    acknowledge(added, "APIG4", OPEN_BY_DESIGN)

        self.usage_plans = self._usage_plans(stage_name, plans, edge=authorizer is not None)

        acknowledge(
            self.rest_api,
            "APIG2",
            "Request parameters are validated here; request bodies are validated by the app "
            "(pydantic schemas, KServe binary tensor checks) because API Gateway's JSON-schema "
            "models cannot describe binary tensor bodies (a body validator would check nothing).",
        )
        if self.authorizer is None:
            for rule in ("APIG4", "COG4"):
                acknowledge(self.rest_api, rule, AUTH_IN_FUNCTIONS)
        else:
            acknowledge(self.rest_api, "COG4", COGNITO_IS_FOR_PEOPLE)
        acknowledge(
            self.rest_api,
            "APIG3",
            "No WAF web ACL yet: it is a fixed monthly cost per ACL and rule before there is much "
            "traffic; a request without a valid key is refused (401, unbilled) before any model runs, and "
            "the usage plans and the stage's throttling cap the rest. WAF is revisited at public launch.",
        )
        acknowledge(
            self.rest_api.node.find_child("CloudWatchRole"),
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level role API Gateway uses to write its logs; AWS maintains this "
            "service-role policy for exactly that purpose, and API Gateway names the log "
            "groups itself, so it cannot be scoped to ours.",
        )

    def _authorizer(self, function: lambda_.IFunction) -> apigw.RequestAuthorizer:
        """The API key authorizer, asked on every request (no result cache) and answering in the AI Mass error shape.

        A request may carry its key in ``Authorization: Bearer`` or in ``x-api-key``. API Gateway caches an
        authorizer's result by its identity sources and refuses, unasked, a request missing any of them, so
        caching would require both headers at once: there are no identity sources and no cache, and the
        function caches key lookups itself (``AIMASS_KEY_CACHE_S``).
        """
        authorizer = apigw.RequestAuthorizer(
            self,
            "KeyAuthorizer",
            authorizer_name=f"{self.rest_api.rest_api_name}-keys",
            handler=function,
            identity_sources=[],
            results_cache_ttl=Duration.seconds(0),
        )
        cfn_authorizer = authorizer.node.default_child
        if isinstance(cfn_authorizer, apigw.CfnAuthorizer):
            # CDK writes the empty list as IdentitySource "", which CloudFormation accepts only by leaving it out
            # (the property is optional when caching is off).
            cfn_authorizer.add_deletion_override("Properties.IdentitySource")
        for response_type, error in GATEWAY_ERRORS.items():
            self.rest_api.add_gateway_response(
                response_type,
                type=apigw.ResponseType.of(response_type),
                status_code=str(error.status),
                response_headers={"Content-Type": "'application/json'"}
                | {name: f"'{value}'" for name, value in error.headers.items()},
                templates={"application/json": error.template},
            )
        return authorizer

    def _usage_plans(
        self, stage_name: str, plans: Mapping[str, PlanConfig], *, edge: bool
    ) -> dict[str, apigw.UsagePlan]:
        """One usage plan per key plan, throttled at its rate and burst and bound to this stage, tagged with its plan.

        API Gateway applies a usage plan's throttle to requests that carry an API Gateway API key of the plan. With
        the edge authorizer, every keyed request does: the authorizer names the caller's edge key
        (``aimass-<rest api id>-<key id>``), which the runtime puts in the usage plan tagged with the key's plan
        (``aimass:plan``) when the key is created or rotated. So each key is throttled at its plan's rate before
        any function runs. Without the authorizer no request carries an edge key and these plans are best effort
        only: the edge limit every request meets is the stage's throttle (aimass:apiThrottleRateLimit/BurstLimit).

        Either way the functions enforce the plans too: each key's request rate and each tenant's monthly units
        (atomic counters in DynamoDB). A plan's monthly units are billable units, not requests, so no API Gateway
        quota is set.
        """
        enforced = "per key, at the edge and in the functions" if edge else "best effort; the functions enforce it"
        usage_plans: dict[str, apigw.UsagePlan] = {}
        for name, plan in sorted(plans.items()):
            usage_plan = self.rest_api.add_usage_plan(
                f"UsagePlan-{name}",
                name=f"aimass-{stage_name}-{name}",
                description=f"AI Mass plan {name!r} ({enforced}): {plan.rate_text}, {plan.monthly_units} units a month",
                # A plan without a rate leaves its keys to the stage's throttle alone.
                throttle=None
                if plan.rate_per_s is None
                else apigw.ThrottleSettings(rate_limit=plan.rate_per_s, burst_limit=plan.burst),
                api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
            )
            Tags.of(usage_plan).add(PLAN_TAG, name)
            usage_plans[name] = usage_plan
        return usage_plans

    def grant_edge_keys(self, roles: Sequence[iam.IRole]) -> iam.Policy:
        """Let ``roles`` give AI Mass keys their edge keys and take them back (``aimass.metering.edge_keys``).

        Create an API key (untagged), add it to one of this API's usage plans, list keys and usage plans,
        read and delete a key. An API key's id is chosen by API Gateway, so reading and deleting one cannot be
        scoped further than every API key of the account and region; adding one to a plan is scoped to this
        API's plans.

        A policy of its own, not the roles' default policies: it names the usage plans, which depend on the stage,
        its deployment, the methods and so the functions, and a function depends on its role's default policy.
        """
        apigateway = f"arn:{Aws.PARTITION}:apigateway:{Aws.REGION}::"
        api_keys = f"{apigateway}/apikeys"
        plan_keys = [
            f"{apigateway}/usageplans/{plan.usage_plan_id}/keys" for _, plan in sorted(self.usage_plans.items())
        ]
        policy = iam.Policy(
            self,
            "EdgeKeysPolicy",
            roles=list(roles),
            statements=[
                iam.PolicyStatement(actions=["apigateway:POST"], resources=[api_keys, *plan_keys]),
                iam.PolicyStatement(actions=["apigateway:GET"], resources=[api_keys, f"{apigateway}/usageplans"]),
                iam.PolicyStatement(actions=["apigateway:GET", "apigateway:DELETE"], resources=[f"{api_keys}/*"]),
            ],
        )
        acknowledge(
            policy,
            "IAM5[Resource::arn:<AWS::Partition>:apigateway:<AWS::Region>::/apikeys/*]",
            "Reading and deleting an edge key (GET, DELETE): API Gateway chooses an API key's id when it creates the "
            "key, so no policy written at deploy time can name it. The runtime touches only keys named "
            "aimass-<this API's id>-<key id>, found by name first.",
        )
        return policy

    @property
    def rest_api_id(self) -> str:
        return self.rest_api.rest_api_id

    @property
    def url(self) -> str:
        """Invoke URL of the deployed stage (ends with a slash)."""
        return self.rest_api.url
