"""Per-request observability: one structured log line and a few metrics for every metered request.

The metering middleware (``aimass.http.middleware.metering``) calls an ``Observer`` once per request, after the answer
is settled, with the request's ``UsageRecord``. ``observer_for`` picks the implementation:

* ``LambdaObserver`` in a Lambda function: a Powertools ``Logger`` JSON line and Powertools metrics in
  CloudWatch embedded metric format (EMF), both printed to stdout. Lambda ships stdout to CloudWatch Logs,
  which extracts the metrics: no AWS call on the request path.
* ``LocalObserver`` elsewhere: the same JSON line through Python logging, and counters and histograms that
  ``metrics_route`` serves in Prometheus' text format (``GET /metrics``).

Tenants and key ids are in the log line only. As metric dimensions or labels they would grow without bound,
and every CloudWatch dimension value is a custom metric billed by the month. Metrics are by service and
model; a record names a model only once one ran (so a catalogued one), else the model is ``none``.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from aimass.contract import METRIC_NAMESPACE, MODEL_DIMENSION, SERVICE_DIMENSION, Metric, service_name
from aimass.metering.usage import UsageRecord
from aimass.settings import Settings

NO_MODEL = "none"  # the model of a request that never reached one (EMF dimension values may not be empty)
# Request durations, in seconds: from a warm embedding (milliseconds) to a long transcription.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"

log = logging.getLogger(__name__)


class Observer(Protocol):
    def request(self, record: UsageRecord, *, cold_start: bool) -> None:
        """Report one answered request; ``cold_start`` when it was the first this process served.

        Called on the request path, after the answer is settled and billed: it must be quick and never raise.
        """
        ...


def log_fields(record: UsageRecord, *, cold_start: bool) -> dict[str, object]:
    """What the request log line says about a request (identifiers and measures, no key material)."""
    return {
        "request_id": record.request_id,
        "tenant": record.tenant,
        "key_id": record.key_id,
        "model": record.model,
        "version": record.version,
        "domain": record.domain,
        "route": record.route,
        "status": record.status,
        "unit": record.unit,
        "units": record.units,
        "inference_ms": round(record.inference_ms, 3),
        "total_ms": round(record.total_ms, 3),
        "cold_start": cold_start,
    }


class LambdaObserver:
    """Powertools ``Logger`` and EMF metrics, flushed after every request (a Mangum handler has no decorator).

    Every request emits every metric, 0 or 1 for the flags, so CloudWatch's Sum is a count and its Average
    a rate (error rate, cold-start rate). Dimension sets: (service, model) and (service) for the totals.
    """

    def __init__(self, service: str, namespace: str = METRIC_NAMESPACE) -> None:
        self.service = service
        self._logger = Logger(service=service, utc=True, use_rfc3339=True)
        # Powertools' logger propagates to the root logger; the root's plain handler would repeat the line.
        logging.getLogger(service).propagate = False
        # The provider itself, not the Metrics facade: Metrics keeps its metric set in class attributes that
        # every instance shares, the provider one per instance.
        self._emf = AmazonCloudWatchEMFProvider(namespace=namespace, service=service)
        self._emf_lock = threading.Lock()  # the set is per instance; Lambda runs one request at a time, tests may not

    def request(self, record: UsageRecord, *, cold_start: bool) -> None:
        # Observing must not fail a request that is already answered and billed.
        try:
            self._log(record, cold_start)
            self._metrics(record, cold_start)
        except Exception:
            log.exception("observing request %s failed", record.request_id)

    def _log(self, record: UsageRecord, cold_start: bool) -> None:
        fields = log_fields(record, cold_start=cold_start)
        if record.status >= 500:
            self._logger.error("request", extra=fields)
        else:
            self._logger.info("request", extra=fields)

    def _metrics(self, record: UsageRecord, cold_start: bool) -> None:
        emf = self._emf
        with self._emf_lock:
            try:
                emf.add_dimension(SERVICE_DIMENSION, self.service)
                emf.add_dimension(MODEL_DIMENSION, record.model or NO_MODEL)
                emf.add_dimensions(**{SERVICE_DIMENSION: self.service})
                emf.add_metadata("request_id", record.request_id)
                emf.add_metric(Metric.REQUESTS.value, MetricUnit.Count, 1)
                emf.add_metric(Metric.LATENCY.value, MetricUnit.Milliseconds, record.total_ms)
                emf.add_metric(Metric.INFERENCE_LATENCY.value, MetricUnit.Milliseconds, record.inference_ms)
                emf.add_metric(Metric.ERRORS.value, MetricUnit.Count, int(record.status >= 500))
                emf.add_metric(Metric.CLIENT_ERRORS.value, MetricUnit.Count, int(400 <= record.status < 500))
                emf.add_metric(Metric.UNITS.value, MetricUnit.Count, record.units)
                emf.add_metric(Metric.COLD_START.value, MetricUnit.Count, int(cold_start))
                if emf.metric_set:  # flush_metrics warns on an empty set
                    emf.flush_metrics()
            finally:
                # flush_metrics keeps the set when POWERTOOLS_METRICS_DISABLED is on; it must not pile up.
                emf.clear_metrics()


class _Histogram:
    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; the last is above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, int]]:
        total, rows = 0, []
        for bound, count in zip([*map(repr, map(float, self.bounds)), "+Inf"], self.counts, strict=True):
            total += count
            rows.append((bound, total))
        return rows


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items()) + "}"


def _console() -> logging.Logger:
    # The line is the whole record: a handler of its own, unless one is configured, and no root formatter.
    console = logging.getLogger("aimass.requests")
    if not console.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        console.addHandler(handler)
        console.setLevel(logging.INFO)
        console.propagate = False
    return console


class LocalObserver:
    """The request log line through Python logging, and metrics in memory for ``GET /metrics`` (thread-safe)."""

    def __init__(
        self,
        service: str = "aimass-local",
        *,
        logger: logging.Logger | None = None,
        buckets: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        self.service = service
        self._logger = logger or _console()
        self._buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._units: Counter[tuple[str, str]] = Counter()
        self._durations: dict[str, _Histogram] = {}
        self._inference: dict[str, _Histogram] = {}

    def request(self, record: UsageRecord, *, cold_start: bool) -> None:
        try:
            self._log(record, cold_start)
            self._count(record)
        except Exception:  # as LambdaObserver: never fail an answered request
            log.exception("observing request %s failed", record.request_id)

    def _log(self, record: UsageRecord, cold_start: bool) -> None:
        error = record.status >= 500
        line = {
            "level": "ERROR" if error else "INFO",
            "message": "request",
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "service": self.service,
            **log_fields(record, cold_start=cold_start),
        }
        self._logger.log(logging.ERROR if error else logging.INFO, json.dumps(line, separators=(",", ":")))

    def _count(self, record: UsageRecord) -> None:
        model = record.model or NO_MODEL
        with self._lock:
            self._requests[model, str(record.status)] += 1
            if record.units:
                self._units[model, record.unit] += record.units
            self._durations.setdefault(model, _Histogram(self._buckets)).observe(record.total_ms / 1e3)
            self._inference.setdefault(model, _Histogram(self._buckets)).observe(record.inference_ms / 1e3)

    def exposition(self) -> str:
        """Every metric in Prometheus' text exposition format (version 0.0.4)."""
        with self._lock:
            lines = [
                "# HELP aimass_requests_total Requests answered, by model and HTTP status.",
                "# TYPE aimass_requests_total counter",
                *(
                    f"aimass_requests_total{_labels(model=model, status=status)} {count}"
                    for (model, status), count in sorted(self._requests.items())
                ),
                "# HELP aimass_units_total Billable units served, by model and unit.",
                "# TYPE aimass_units_total counter",
                *(
                    f"aimass_units_total{_labels(model=model, unit=unit)} {count}"
                    for (model, unit), count in sorted(self._units.items())
                ),
                *_histogram_lines(
                    "aimass_request_duration_seconds", "Time to answer a request, by model.", self._durations
                ),
                *_histogram_lines(
                    "aimass_inference_duration_seconds", "Time spent in the model, by model.", self._inference
                ),
            ]
        return "\n".join(lines) + "\n"


def _histogram_lines(name: str, help_text: str, histograms: dict[str, _Histogram]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for model, histogram in sorted(histograms.items()):
        rows = histogram.cumulative()
        lines += [f"{name}_bucket{_labels(model=model, le=bound)} {count}" for bound, count in rows]
        lines += [
            f"{name}_sum{_labels(model=model)} {histogram.sum!r}",
            f"{name}_count{_labels(model=model)} {rows[-1][1]}",
        ]
    return lines


def observer_for(settings: Settings, *, in_lambda: bool | None = None) -> Observer:
    """``LambdaObserver`` in a Lambda function (``AWS_LAMBDA_FUNCTION_NAME`` set, unless told), else local."""
    service = service_name(settings.domains)
    if in_lambda is None:
        in_lambda = bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))
    if in_lambda:
        return LambdaObserver(service, os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or METRIC_NAMESPACE)
    return LocalObserver(service)


def metrics_route(observer: LocalObserver) -> Route:
    """``GET /metrics``: the local observer's metrics for a Prometheus scraper (no key needed)."""

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(observer.exposition(), media_type=PROMETHEUS_CONTENT_TYPE)

    return Route("/metrics", metrics, methods=["GET"], include_in_schema=False)
