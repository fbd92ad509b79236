"""The public HTTPS API: an API Gateway REST API in front of the domain functions."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.nag import acknowledge

# API Gateway REST integrations time out after 29 seconds.
INTEGRATION_TIMEOUT = Duration.seconds(29)

AUTH_LATER = (
    "The API has no caller authentication yet: tenants and API keys (usage plans) arrive with "
    "the pay-per-use issue. Until then the stage's throttling caps what unauthenticated traffic can cost."
)


class ServingApi(Construct):
    """REST API (v1) routing the served paths to one function with Lambda proxy integration.

    Routes: ``/v2`` and ``/v2/{proxy+}`` (KServe v2 protocol), ``/v1/{proxy+}`` (OpenAI-style
    embeddings and model list), ``GET /docs`` and ``GET /openapi.json``. The paths are the same
    as the app serves locally, so the app routes and API Gateway only forwards.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        stage_name: str,
        throttle_rate_limit: float,
        throttle_burst_limit: int,
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
        # what it can see: the {proxy+} path parameter is present.
        validator = self.rest_api.add_request_validator(
            "RequestValidator",
            request_validator_name="path-parameters",
            validate_request_parameters=True,
            validate_request_body=False,
        )
        integration = apigw.LambdaIntegration(
            handler,
            proxy=True,
            timeout=INTEGRATION_TIMEOUT,
            # One permission per method; no extra ones for the console's test-invoke.
            allow_test_invoke=False,
        )
        proxy_params = {"method.request.path.proxy": True}

        v2 = self.rest_api.root.add_resource("v2")
        v2.add_method("ANY", integration, request_validator=validator)
        v2.add_resource("{proxy+}").add_method(
            "ANY", integration, request_validator=validator, request_parameters=proxy_params
        )
        v1 = self.rest_api.root.add_resource("v1")
        v1.add_resource("{proxy+}").add_method(
            "ANY", integration, request_validator=validator, request_parameters=proxy_params
        )
        self.rest_api.root.add_resource("docs").add_method("GET", integration, request_validator=validator)
        self.rest_api.root.add_resource("openapi.json").add_method("GET", integration, request_validator=validator)

        acknowledge(
            self.rest_api,
            "APIG2",
            "Request parameters are validated here; request bodies are validated by the app "
            "(pydantic schemas, KServe binary tensor checks) because API Gateway's JSON-schema "
            "models cannot describe binary tensor bodies (a body validator would check nothing).",
        )
        for rule in ("APIG4", "COG4"):
            acknowledge(self.rest_api, rule, AUTH_LATER)
        acknowledge(
            self.rest_api,
            "APIG3",
            "No WAF web ACL yet: it is a fixed monthly cost per ACL and rule before there is any "
            "traffic; stage throttling limits abuse meanwhile, and WAF is revisited with the "
            "pay-per-use issue (per-tenant keys, public launch).",
        )
        acknowledge(
            self.rest_api.node.find_child("CloudWatchRole"),
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]",
            "The account-level role API Gateway uses to write its logs; AWS maintains this "
            "service-role policy for exactly that purpose, and API Gateway names the log "
            "groups itself, so it cannot be scoped to ours.",
        )

    @property
    def url(self) -> str:
        """Invoke URL of the deployed stage (ends with a slash)."""
        return self.rest_api.url
