"""What operators watch: one CloudWatch dashboard per stage, its alarms and the encrypted topic they notify."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

# What each function's Powertools EMF records carry (aimass.observability): the namespace, the metrics and the
# service dimension, aimass-<domain> for a function serving one domain; a second dimension set adds the model.
from aimass.contract import METRIC_NAMESPACE, MODEL_DIMENSION, SERVICE_DIMENSION, Metric, service_name

PERIOD = Duration.minutes(5)
# Counted failures (crashes, timeouts, throttles): any in two of the last three periods. One stray timeout does
# not page anybody; a bad deploy or a concurrency limit being hit does, within ten minutes.
FAILURE_PERIODS, FAILURE_DATAPOINTS = 3, 2
# Latency: p99 over the threshold for three periods in a row (15 minutes), not one slow burst.
LATENCY_PERIODS = 3
# 5XX rate: over 5 % of the stage's requests in two of three periods, once there are enough requests to judge.
SERVER_ERROR_PERCENT = 5
SERVER_ERROR_MIN_REQUESTS = 20


class ServingMonitoring(Construct):
    """A dashboard of the API stage and every function, and alarms that notify one topic.

    Dashboard ``aimass-<stage>``: the API's requests, 4XX, 5XX and latency; per function, the request latency and
    inference latency (p50, p99) and the request, error, client-error, unit and cold-start counts from its EMF
    metrics, Lambda's own errors, throttles and duration, and each model's p99 latency.

    Alarms: per function, Lambda errors, throttles and p99 request latency over ``latency_alarm_ms``; for the
    stage, its 5XX rate. Each notifies ``topic`` (subscribe to it); missing data (no traffic) is not breaching.

    With ``authorizer`` (the API key authorizer's function), a row of its Lambda metrics and its errors and
    throttles alarms: while it fails, every keyed request is answered 503.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage_name: str,
        functions: Mapping[str, lambda_.IFunction],
        models: Mapping[str, Sequence[str]],
        api_stage: apigw.Stage,
        latency_alarm_ms: int,
        authorizer: lambda_.IFunction | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []
        self.topic = self._topic(stage_name)
        self._action = cloudwatch_actions.SnsAction(self.topic)
        self._stage_name = stage_name

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"aimass-{stage_name}",
            default_interval=Duration.hours(3),
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# AI Mass {stage_name}\n"
                "API Gateway's metrics for the stage, then each domain function: its own request metrics "
                f"(namespace `{METRIC_NAMESPACE}`, dimension `{SERVICE_DIMENSION}`) and Lambda's. "
                "Units are billable units.",
                width=24,
                height=2,
            )
        )
        self._api(api_stage)
        if authorizer is not None:
            self._authorizer(authorizer)
        for domain, function in sorted(functions.items()):
            self._function(domain, function, models.get(domain, ()), latency_alarm_ms)

    def _topic(self, stage_name: str) -> sns.Topic:
        # CloudWatch cannot publish to a topic under the AWS managed SNS key: the key is ours, and its policy lets
        # CloudWatch (only to encrypt the message it publishes) use it.
        key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the AI Mass alarm topic",
            enable_key_rotation=True,
            # It protects messages in flight only; nothing stays encrypted under it once the stack is gone.
            removal_policy=RemovalPolicy.DESTROY,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"AI Mass {stage_name} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        # The topic's policy replaces SNS's default one: CloudWatch alarms of this account may publish.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        return topic

    def _api(self, stage: apigw.Stage) -> None:
        requests = stage.metric_count(period=PERIOD, statistic="Sum", label="requests")
        server_errors = stage.metric_server_error(period=PERIOD, statistic="Sum", label="5XX")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API: requests, 4XX, 5XX",
                left=[
                    requests,
                    stage.metric_client_error(period=PERIOD, statistic="Sum", label="4XX"),
                    server_errors,
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API: latency (ms)",
                left=[
                    stage.metric_latency(period=PERIOD, statistic="p50", label="p50"),
                    stage.metric_latency(period=PERIOD, statistic="p99", label="p99"),
                    stage.metric_integration_latency(period=PERIOD, statistic="p99", label="integration p99"),
                ],
                width=12,
            ),
        )
        # A rate, not a count, and none while traffic is too thin for a rate to mean anything.
        rate = cloudwatch.MathExpression(
            expression=f"IF(requests >= {SERVER_ERROR_MIN_REQUESTS}, 100 * errors / requests, 0)",
            using_metrics={"requests": requests, "errors": server_errors},
            period=PERIOD,
            label="5XX rate (%)",
        )
        self._alarm(
            "api-5xx-rate",
            metric=rate,
            threshold=SERVER_ERROR_PERCENT,
            periods=FAILURE_PERIODS,
            datapoints=FAILURE_DATAPOINTS,
            description=f"More than {SERVER_ERROR_PERCENT} % of the API's requests answered 5XX (at least "
            f"{SERVER_ERROR_MIN_REQUESTS} requests in 5 minutes) in two of the last three 5-minute periods.",
        )

    def _authorizer(self, function: lambda_.IFunction) -> None:
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API key authorizer: invocations",
                left=[
                    function.metric_invocations(period=PERIOD, statistic="Sum", label="invocations"),
                    function.metric_errors(period=PERIOD, statistic="Sum", label="errors"),
                    function.metric_throttles(period=PERIOD, statistic="Sum", label="throttles"),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API key authorizer: duration (ms)",
                left=[
                    function.metric_duration(period=PERIOD, statistic="p50", label="p50"),
                    function.metric_duration(period=PERIOD, statistic="p99", label="p99"),
                ],
                width=12,
            ),
        )
        self._lambda_alarms(
            "authorizer",
            function,
            errors="The API key authorizer failed (the keys table unreachable, a crash or a timeout) in two of the "
            "last three 5-minute periods: API Gateway answered those requests 503.",
            throttles="Lambda throttled the API key authorizer in two of the last three 5-minute periods: API "
            "Gateway answered those requests 503.",
        )

    def _function(self, domain: str, function: lambda_.IFunction, models: Sequence[str], latency_alarm_ms: int) -> None:
        service = {SERVICE_DIMENSION: service_name([domain])}

        def emf(name: Metric, statistic: str, label: str, dimensions: Mapping[str, str] = service) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=METRIC_NAMESPACE,
                metric_name=name.value,
                dimensions_map=dict(dimensions),
                statistic=statistic,
                period=PERIOD,
                label=label,
            )

        p99 = emf(Metric.LATENCY, "p99", "p99")
        threshold = cloudwatch.HorizontalAnnotation(value=latency_alarm_ms, label="alarm")
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title=f"{domain}: latency (ms)",
                left=[
                    emf(Metric.LATENCY, "p50", "p50"),
                    p99,
                    emf(Metric.INFERENCE_LATENCY, "p50", "inference p50"),
                    emf(Metric.INFERENCE_LATENCY, "p99", "inference p99"),
                ],
                left_annotations=[threshold],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{domain}: requests",
                left=[
                    emf(Metric.REQUESTS, "Sum", "requests"),
                    emf(Metric.ERRORS, "Sum", "5XX"),
                    emf(Metric.CLIENT_ERRORS, "Sum", "4XX"),
                    emf(Metric.COLD_START, "Sum", "cold starts"),
                ],
                right=[emf(Metric.UNITS, "Sum", "billable units")],
                width=6,
            ),
            cloudwatch.GraphWidget(
                title=f"{domain}: Lambda",
                left=[
                    function.metric_errors(period=PERIOD, statistic="Sum", label="errors"),
                    function.metric_throttles(period=PERIOD, statistic="Sum", label="throttles"),
                ],
                right=[function.metric_duration(period=PERIOD, statistic="p99", label="duration p99 (ms)")],
                width=6,
            ),
        ]
        if models:
            widgets.append(
                cloudwatch.GraphWidget(
                    title=f"{domain}: p99 latency by model (ms)",
                    left=[
                        emf(Metric.LATENCY, "p99", model, {**service, MODEL_DIMENSION: model})
                        for model in sorted(models)
                    ],
                    width=6,
                )
            )
        self.dashboard.add_widgets(*widgets)

        self._lambda_alarms(
            domain,
            function,
            errors=f"The {domain} function failed invocations (crash, timeout, out of memory) in two of the last "
            "three 5-minute periods; the app answers its own errors, so these are failures it could not answer.",
            throttles=f"Lambda throttled the {domain} function (its reserved or the account's concurrency) in two "
            "of the last three 5-minute periods: callers got errors.",
        )
        self._alarm(
            f"{domain}-latency-p99",
            metric=p99,
            threshold=latency_alarm_ms,
            periods=LATENCY_PERIODS,
            datapoints=LATENCY_PERIODS,
            description=f"The {domain} function's p99 request latency was over {latency_alarm_ms} ms "
            "(context aimass:latencyAlarmMs) for 15 minutes.",
            # A handful of requests make a p99 of their slowest one: judge only when there are enough.
            low_sample_count="ignore",
        )

    def _lambda_alarms(self, name: str, function: lambda_.IFunction, *, errors: str, throttles: str) -> None:
        """``<name>-errors`` and ``<name>-throttles``: any in two of the last three periods."""
        for suffix, metric, description in (
            ("errors", function.metric_errors(period=PERIOD, statistic="Sum"), errors),
            ("throttles", function.metric_throttles(period=PERIOD, statistic="Sum"), throttles),
        ):
            self._alarm(
                f"{name}-{suffix}",
                metric=metric,
                threshold=1,
                at_least=True,
                periods=FAILURE_PERIODS,
                datapoints=FAILURE_DATAPOINTS,
                description=description,
            )

    def _alarm(
        self,
        name: str,
        *,
        metric: cloudwatch.IMetric,
        threshold: float,
        at_least: bool = False,
        periods: int,
        datapoints: int,
        description: str,
        low_sample_count: str | None = None,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_name=f"aimass-{self._stage_name}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
            if at_least
            else cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            evaluate_low_sample_count_percentile=low_sample_count,
        )
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)
