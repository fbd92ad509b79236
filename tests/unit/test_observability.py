"""The request observers: the log line and EMF document a Lambda function prints, the local Prometheus metrics."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from aimass.metering.usage import UsageRecord
from aimass.observability import (
    LambdaObserver,
    LocalObserver,
    metrics_route,
    observer_for,
)
from aimass.settings import Settings

FIELDS = {
    "request_id",
    "tenant",
    "key_id",
    "model",
    "version",
    "domain",
    "route",
    "status",
    "unit",
    "units",
    "inference_ms",
    "total_ms",
    "cold_start",
}
METRICS = {
    "Requests": "Count",
    "Latency": "Milliseconds",
    "InferenceLatency": "Milliseconds",
    "Errors": "Count",
    "ClientErrors": "Count",
    "Units": "Count",
    "ColdStart": "Count",
}
# One sample of the text exposition format: name, optional {labels}, value.
SAMPLE = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)")
LABEL = re.compile(r'(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<value>(?:[^"\\]|\\.)*)"')


def usage(**changes: Any) -> UsageRecord:
    record = UsageRecord(
        request_id="req-1",
        at=datetime(2026, 3, 1, 12, tzinfo=UTC),
        tenant="acme",
        key_id="key-7",
        model="all-minilm-l6-v2",
        version="3",
        domain="text",
        route="POST /v1/embeddings",
        unit="tokens",
        units=12,
        inference_ms=4.25,
        total_ms=7.5,
        memory_mb=2048,
        unit_price=2e-8,
        cost=2.4e-7,
        status=200,
        billed=True,
    )
    return record.model_copy(update=changes)


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "POWERTOOLS_DEV",
        "POWERTOOLS_METRICS_DISABLED",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_LOG_LEVEL",
        "AWS_LAMBDA_LOG_LEVEL",
        "_X_AMZN_TRACE_ID",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def service(lambda_env: None) -> str:
    # Powertools binds a service's logger to the stdout of its first use: a fresh name per test, for capsys.
    return f"aimass-test-{uuid.uuid4().hex[:8]}"


def printed(capsys: pytest.CaptureFixture[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """stdout as (log lines, EMF documents); every line must be one JSON document."""
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return [d for d in documents if "_aws" not in d], [d for d in documents if "_aws" in d]


def test_lambda_observer_prints_one_log_line_and_one_emf_document(
    service: str, capsys: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    # GIVEN a Lambda observer
    observer = LambdaObserver(service, "AIMassTest")
    # WHEN a request is reported
    observer.request(usage(), cold_start=True)
    # THEN one JSON log line carries the request's fields (and nothing priced or secret)
    (line,), (emf,) = printed(capsys)
    assert line["level"] == "INFO" and line["message"] == "request" and line["service"] == service
    assert set(line) >= FIELDS and not {"cost", "unit_price", "billed", "memory_mb"} & set(line)
    assert {name: line[name] for name in ("request_id", "tenant", "key_id", "model", "status", "units")} == {
        "request_id": "req-1",
        "tenant": "acme",
        "key_id": "key-7",
        "model": "all-minilm-l6-v2",
        "status": 200,
        "units": 12,
    }
    assert line["total_ms"] == 7.5 and line["inference_ms"] == 4.25 and line["cold_start"] is True
    # AND one EMF document holds every metric, by (service, model) and by service, with no tenant or key
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "AIMassTest"
    assert directive["Dimensions"] == [["service", "model"], ["service"]]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == METRICS
    assert emf["service"] == service and emf["model"] == "all-minilm-l6-v2" and emf["request_id"] == "req-1"
    assert "tenant" not in emf and "key_id" not in emf
    values = {name: emf[name] for name in METRICS}
    assert values == {
        "Requests": [1.0],
        "Latency": [7.5],
        "InferenceLatency": [4.25],
        "Errors": [0.0],
        "ClientErrors": [0.0],
        "Units": [12.0],
        "ColdStart": [1.0],
    }
    # AND Powertools had nothing to warn about
    assert not recwarn.list


@pytest.mark.parametrize(
    ("status", "level", "errors", "client_errors"),
    [(200, "INFO", 0.0, 0.0), (404, "INFO", 0.0, 1.0), (429, "INFO", 0.0, 1.0), (503, "ERROR", 1.0, 0.0)],
)
def test_lambda_observer_counts_errors_by_class(
    service: str, capsys: pytest.CaptureFixture[str], status: int, level: str, errors: float, client_errors: float
) -> None:
    LambdaObserver(service).request(usage(status=status), cold_start=False)
    (line,), (emf,) = printed(capsys)
    assert line["level"] == level and line["status"] == status
    assert emf["Errors"] == [errors] and emf["ClientErrors"] == [client_errors] and emf["ColdStart"] == [0.0]


def test_lambda_observer_flushes_each_request_on_its_own(service: str, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a request that never reached a model, then one that did
    observer = LambdaObserver(service)
    observer.request(usage(request_id="a", model="", version="", units=0, status=401), cold_start=True)
    observer.request(usage(request_id="b"), cold_start=False)
    # THEN each has its own document: nothing carried over (values, dimensions, dimension sets)
    lines, (first, second) = printed(capsys)
    assert [line["request_id"] for line in lines] == ["a", "b"]
    assert first["model"] == "none" and first["Units"] == [0.0] and first["ColdStart"] == [1.0]
    assert second["model"] == "all-minilm-l6-v2" and second["Requests"] == [1.0] and second["ColdStart"] == [0.0]
    assert second["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "model"], ["service"]]


def test_lambda_observer_with_metrics_disabled_prints_the_log_only(
    service: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recwarn: pytest.WarningsRecorder,
) -> None:
    # GIVEN metrics turned off, as Powertools allows
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    observer = LambdaObserver(service)
    # WHEN more requests than Powertools' 100-value batch arrive
    for n in range(150):
        observer.request(usage(request_id=str(n)), cold_start=False)
    # THEN only log lines come out: no EMF, no pile-up that Powertools would print at 100, no warning
    lines, documents = printed(capsys)
    assert len(lines) == 150 and documents == []
    assert not recwarn.list


def test_lambda_log_line_is_not_repeated_by_the_root_logger(service: str, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a plain root handler, as aimass.serving.boot.configure_logging installs
    observer = LambdaObserver(service)
    root = logging.StreamHandler()
    logging.getLogger().addHandler(root)
    try:
        observer.request(usage(), cold_start=False)
    finally:
        logging.getLogger().removeHandler(root)
    # THEN the line is printed once, as JSON, and not again on stderr
    captured = capsys.readouterr()
    assert sum('"message":"request"' in line for line in captured.out.splitlines()) == 1
    assert "request" not in captured.err


def test_observer_failure_does_not_reach_the_request(
    service: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    observer = LambdaObserver(service)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(observer._emf, "add_metric", broken)
    observer.request(usage(), cold_start=False)
    assert "observing request req-1 failed" in caplog.text


def test_local_observer_logs_the_same_line(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a local observer logging to a logger the test reads
    observer = LocalObserver("aimass-text", logger=logging.getLogger("tests.observability"))
    # WHEN a failed request is reported
    with caplog.at_level(logging.INFO, logger="tests.observability"):
        observer.request(usage(status=500), cold_start=True)
    # THEN its message is the JSON line Lambda prints (bar Powertools' code location), at ERROR
    (record,) = caplog.records
    line = json.loads(record.getMessage())
    assert record.levelno == logging.ERROR and line["level"] == "ERROR"
    assert set(line) == FIELDS | {"level", "message", "timestamp", "service"}
    assert line["service"] == "aimass-text" and line["status"] == 500 and line["cold_start"] is True
    assert datetime.fromisoformat(line["timestamp"]).tzinfo is not None


def parse_exposition(text: str) -> tuple[dict[str, str], list[tuple[str, dict[str, str], float]]]:
    """(type of each metric, samples); fails on any line that is not HELP, TYPE or a well-formed sample."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helped: set[str] = set()
    samples: list[tuple[str, dict[str, str], float]] = []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[len("# HELP ") :].partition(" ")
            assert help_text and name not in helped
            helped.add(name)
        elif line.startswith("# TYPE "):
            name, kind = line[len("# TYPE ") :].split(" ")
            assert kind in {"counter", "histogram", "gauge"} and name in helped and name not in types
            types[name] = kind
        else:
            match = SAMPLE.fullmatch(line)
            assert match, f"not a sample: {line!r}"
            labels = list(LABEL.finditer(match["labels"] or ""))
            assert ",".join(label[0] for label in labels) == (match["labels"] or ""), line
            family = re.sub(r"_(bucket|sum|count)$", "", match["name"])
            assert family in types or match["name"] in types, f"sample before its TYPE: {line!r}"
            samples.append((match["name"], {label["name"]: label["value"] for label in labels}, float(match["value"])))
    return types, samples


def test_local_exposition_adds_up(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a local observer and N requests to two models, some failing
    observer = LocalObserver(logger=logging.getLogger("tests.observability"))
    durations = [0.003, 0.02, 0.02, 0.4, 1.7, 42.0]  # seconds; the last above every bucket
    for n, seconds in enumerate(durations):
        observer.request(usage(request_id=str(n), total_ms=seconds * 1e3, units=10), cold_start=n == 0)
    observer.request(usage(model="tiny-vision", unit="images", units=2, status=503), cold_start=False)
    observer.request(usage(model="", units=0, status=401), cold_start=False)
    # WHEN the exposition is parsed line by line
    types, samples = parse_exposition(observer.exposition())
    # THEN the counters add up
    assert types == {
        "aimass_requests_total": "counter",
        "aimass_units_total": "counter",
        "aimass_request_duration_seconds": "histogram",
        "aimass_inference_duration_seconds": "histogram",
    }
    requests = {(s[1]["model"], s[1]["status"]): s[2] for s in samples if s[0] == "aimass_requests_total"}
    assert requests == {("all-minilm-l6-v2", "200"): 6, ("tiny-vision", "503"): 1, ("none", "401"): 1}
    units = {(s[1]["model"], s[1]["unit"]): s[2] for s in samples if s[0] == "aimass_units_total"}
    assert units == {("all-minilm-l6-v2", "tokens"): 60, ("tiny-vision", "images"): 2}
    # AND the histogram's buckets are cumulative, end at +Inf with the count, and the sum is the total
    minilm = [
        s for s in samples if s[0].startswith("aimass_request_duration_seconds") and s[1]["model"] == "all-minilm-l6-v2"
    ]
    buckets = [(s[1]["le"], s[2]) for s in minilm if s[0].endswith("_bucket")]
    bounds = [float(le) for le, _ in buckets]
    counts = [count for _, count in buckets]
    assert bounds == sorted(bounds) and bounds[-1] == math.inf and counts == sorted(counts)
    assert dict(buckets)["0.005"] == 1 and dict(buckets)["0.025"] == 3 and dict(buckets)["30.0"] == 5
    assert counts[-1] == 6 == next(s[2] for s in minilm if s[0].endswith("_count"))
    assert next(s[2] for s in minilm if s[0].endswith("_sum")) == pytest.approx(sum(durations))


def test_local_exposition_escapes_label_values() -> None:
    observer = LocalObserver(logger=logging.getLogger("tests.observability"))
    observer.request(usage(model='odd"model\\x\ny'), cold_start=False)
    _, samples = parse_exposition(observer.exposition())
    assert {s[1]["model"] for s in samples} == {'odd\\"model\\\\x\\ny'}


def test_local_observer_is_thread_safe() -> None:
    observer = LocalObserver(logger=logging.getLogger("tests.observability"))

    def report() -> None:
        for _ in range(250):
            observer.request(usage(units=1), cold_start=False)

    threads = [threading.Thread(target=report) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _, samples = parse_exposition(observer.exposition())
    totals = {s[0]: s[2] for s in samples if s[0] in {"aimass_requests_total", "aimass_units_total"}}
    assert totals == {"aimass_requests_total": 2000, "aimass_units_total": 2000}
    counts = [s[2] for s in samples if s[0] == "aimass_request_duration_seconds_count"]
    assert counts == [2000]


def test_metrics_route_serves_the_exposition() -> None:
    # GIVEN an app with the route, and one request observed
    observer = LocalObserver(logger=logging.getLogger("tests.observability"))
    observer.request(usage(), cold_start=True)
    client = TestClient(Starlette(routes=[metrics_route(observer)]))
    # WHEN a scraper asks for /metrics
    response = client.get("/metrics")
    # THEN it gets the text format, version 0.0.4
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert response.text == observer.exposition()
    assert 'aimass_requests_total{model="all-minilm-l6-v2",status="200"} 1' in response.text.splitlines()
    assert client.post("/metrics").status_code == 405


def test_observer_for_picks_by_environment(lambda_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(domains=("vision", "text"))
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    local = observer_for(settings)
    assert isinstance(local, LocalObserver) and local.service == "aimass-text-vision"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "aimass-text")
    assert isinstance(observer_for(settings), LambdaObserver)
    assert isinstance(observer_for(settings, in_lambda=False), LocalObserver)
