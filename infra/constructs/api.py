"""The public HTTPS API: an API Gateway REST API in front of the domain functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import PlanConfig
from infra.nag import acknowledge
from infra.routes import Route

# API Gateway REST integrations time out after 29 seconds.
INTEGRATION_TIMEOUT = Duration.seconds(29)

AUTH_IN_FUNCTIONS = (
    "Callers are authenticated by the functions, not by API Gateway: every model route requires an AI Mass "
    "API key (Authorization: Bearer or x-api-key) checked against the DynamoDB keys table (hashed secrets, "
    "scopes, plans, revocation), and every request is metered per tenant. An API Gateway authorizer would be a "
    "second copy of that check, and Cognito user pools are for people signing in, not for machine API keys."
)


class ServingApi(Construct):
    """REST API (v1) routing each path of the route table to its domain's function (Lambda proxy).

    ``routes`` is ``infra.routes.route_table(...)``: one resource and method per row, nothing else.
    The paths are the ones the app serves locally, so the app routes within a function and API
    Gateway only picks the function.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes: Sequence[Route],
        handlers: Mapping[str, lambda_.IFunction],
        stage_name: str,
        throttle_rate_limit: float,
        throttle_burst_limit: int,
        plans: Mapping[str, PlanConfig],
        log_retention: logs.RetentionDays,
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
        integrations = {
            domain: apigw.LambdaIntegration(
                handler,
                proxy=True,
                timeout=INTEGRATION_TIMEOUT,
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
            for method in route.methods:
                resource.add_method(
                    method,
                    integrations[route.domain],
                    request_validator=validator,
                    request_parameters={f"method.request.path.{name}": True for name in variables} or None,
                )

        self.usage_plans = self._usage_plans(stage_name, plans)

        acknowledge(
            self.rest_api,
            "APIG2",
            "Request parameters are validated here; request bodies are validated by the app "
            "(pydantic schemas, KServe binary tensor checks) because API Gateway's JSON-schema "
            "models cannot describe binary tensor bodies (a body validator would check nothing).",
        )
        for rule in ("APIG4", "COG4"):
            acknowledge(self.rest_api, rule, AUTH_IN_FUNCTIONS)
        acknowledge(
            self.rest_api,
            "APIG3",
            "No WAF web ACL yet: it is a fixed monthly cost per ACL and rule before there is much "
            "traffic; a request without a valid key is refused (401, unbilled) before any model runs and "
            "the stage's throttling caps the rest. WAF is revisited at public launch.",
        )
        acknowledge(
            self.rest_api.node.find_child("CloudWatchRole"),
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level role API Gateway uses to write its logs; AWS maintains this "
            "service-role policy for exactly that purpose, and API Gateway names the log "
            "groups itself, so it cannot be scoped to ours.",
        )

    def _usage_plans(self, stage_name: str, plans: Mapping[str, PlanConfig]) -> dict[str, apigw.UsagePlan]:
        """One usage plan per key plan, throttled at its rate and burst and bound to this stage: best effort.

        API Gateway applies a usage plan's throttle to requests carrying an API Gateway API key of the plan.
        AI Mass keys are not API Gateway keys, and no method requires one: the functions check the caller's key
        against the keys table, which keeps revocation, rotation, scopes, plans and tenants in one place (API
        Gateway keys are identifiers for usage plans, not a means of authorization). So today the edge limit
        every request meets is the stage's throttle (aimass:apiThrottleRateLimit/BurstLimit); these plans put
        each plan's limits on the stage, ready for requests that carry an API Gateway key of their plan (an
        authorizer returning it, API key source AUTHORIZER). Either way the source of truth is the functions:
        each key's request rate and each tenant's monthly units (atomic counters in DynamoDB). A plan's monthly
        units are billable units, not requests, so no API Gateway quota is set.
        """
        usage_plans: dict[str, apigw.UsagePlan] = {}
        for name, plan in sorted(plans.items()):
            usage_plans[name] = self.rest_api.add_usage_plan(
                f"UsagePlan-{name}",
                name=f"aimass-{stage_name}-{name}",
                description=f"AI Mass plan {name!r} at the edge (best effort; the functions enforce it): "
                f"{plan.rate_per_s:g} requests/s, burst {plan.burst}, {plan.monthly_units} units a month",
                throttle=apigw.ThrottleSettings(rate_limit=plan.rate_per_s, burst_limit=plan.burst),
                api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
            )
        return usage_plans

    @property
    def url(self) -> str:
        """Invoke URL of the deployed stage (ends with a slash)."""
        return self.rest_api.url
