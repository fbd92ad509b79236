"""Deployment settings: CDK context and each functions/<domain>/function.toml, validated with messages
that name the bad key (and file)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest

from aimass.contract import API_INTEGRATION_TIMEOUT_S
from bench.sizing_record import SIZED_OTHERWISE
from infra.app import REPO_ROOT, build_app, cdk_json_context
from infra.config import (
    AUTHORIZER_FUNCTION,
    DEFAULT_PLANS,
    ConfigError,
    FunctionConfig,
    PlanConfig,
    ServingConfig,
    discover_functions,
    function_domains,
    load_authorizer_function,
    load_function_config,
)
from tests.infra.infra_synth import AUTHORIZER, DOCKERFILE_DOMAINS

VALID_TOML = 'memory_mb = 2048\ntimeout_s = 20\narchitecture = "arm64"\nroutes = ["/v1/extra"]\n'


def test_defaults_match_cdk_json() -> None:
    # `python infra/app.py` and `npx cdk synth` must agree; cdk.json is what people read.
    ours = {key: value for key, value in cdk_json_context().items() if key.startswith("aimass:")}
    assert ours == ServingConfig.defaults_as_context()


def test_cdk_json_runs_the_app_and_stays_offline() -> None:
    cdk_json = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))
    assert cdk_json["app"] == ".venv/bin/python infra/app.py"
    assert cdk_json["notices"] is False
    assert cdk_json["context"]["cli-telemetry"] is False
    # The catalogue (models/) decides the routes, so `cdk watch` follows it too.
    assert "models/**" in cdk_json["watch"]["include"]


def test_default_config() -> None:
    config = ServingConfig.from_context(cdk_json_context())
    assert config.stage == "dev"
    assert config.front_domain == "text"
    assert config.function_overrides == {}
    assert config.log_retention_days == 30
    assert config.alias_check_seconds == 30
    assert config.plans == DEFAULT_PLANS
    assert config.latency_alarm_ms == 5000
    assert config.edge_authorizer is True
    assert config.files_expire_days == 30


def test_config_is_frozen() -> None:
    config = ServingConfig()
    with pytest.raises(ValueError, match="frozen"):
        config.stage = "prod"  # type: ignore[misc]


def test_cli_strings_are_coerced() -> None:
    # `cdk synth -c key=value` passes every value as a string.
    config = ServingConfig.from_context(
        {
            "aimass:apiThrottleRateLimit": "12.5",
            "aimass:functionOverrides": '{"text": {"memory_mb": 4096}}',
            "aimass:aliasCheckSeconds": "0",
            "aimass:plans": '{"pro": {"rate_per_s": 100, "burst": 200, "monthly_units": 1000000000}}',
            "aimass:latencyAlarmMs": "2500",
            "aimass:edgeAuthorizer": "false",
            "aimass:filesExpireDays": "7",
        }
    )
    assert config.files_expire_days == 7
    assert config.edge_authorizer is False
    assert config.plans == {"pro": PlanConfig(rate_per_s=100, burst=200, monthly_units=1_000_000_000)}
    assert config.latency_alarm_ms == 2500
    assert config.api_throttle_rate_limit == 12.5
    assert config.alias_check_seconds == 0  # never re-read: serve what is loaded until the next cold start
    assert config.function_overrides == {"text": {"memory_mb": 4096}}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("aimass:stage", "Prod Stage"),
        ("aimass:frontDomain", "Text"),
        ("aimass:functionOverrides", "{not json"),
        ("aimass:logRetentionDays", 10),
        ("aimass:apiThrottleBurstLimit", 0),
        ("aimass:aliasCheckSeconds", -1),
        ("aimass:aliasCheckSeconds", "soon"),
        ("aimass:aliasCheckSeconds", "inf"),
        ("aimass:aliasCheckSeconds", True),
        ("aimass:latencyAlarmMs", 0),
        ("aimass:latencyAlarmMs", 30000),  # past the 29 s integration timeout nothing is measured
        ("aimass:latencyAlarmMs", "soon"),
        ("aimass:latencyAlarmMs", True),
        ("aimass:plans", "{not json"),
        ("aimass:plans", {}),
        ("aimass:plans", ["default"]),
        ("aimass:edgeAuthorizer", "maybe"),
        ("aimass:edgeAuthorizer", 1),
        ("aimass:edgeAuthorizer", None),
        ("aimass:filesExpireDays", 0),
        ("aimass:filesExpireDays", -30),
        ("aimass:filesExpireDays", 1.5),
        ("aimass:filesExpireDays", "a month"),
        ("aimass:filesExpireDays", True),
        ("aimass:filesExpireDays", None),
    ],
)
def test_bad_values_are_rejected_naming_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"CDK context '{key}") as raised:
        ServingConfig.from_context({key: value})
    assert repr(value) in str(raised.value)


GOOD_PLAN = {"rate_per_s": 2, "burst": 5, "monthly_units": 1000}


@pytest.mark.parametrize(
    ("plan", "key", "message"),
    [
        ({**GOOD_PLAN, "rate_per_s": 0}, "aimass:plans.free.rate_per_s", "greater than 0"),
        ({**GOOD_PLAN, "rate_per_s": -1.5}, "aimass:plans.free.rate_per_s", "greater than 0"),
        ({**GOOD_PLAN, "rate_per_s": float("inf")}, "aimass:plans.free.rate_per_s", "finite number"),
        ({**GOOD_PLAN, "rate_per_s": "2"}, "aimass:plans.free.rate_per_s", "valid number"),
        ({**GOOD_PLAN, "burst": 0}, "aimass:plans.free.burst", "greater than 0"),
        ({**GOOD_PLAN, "burst": 1.5}, "aimass:plans.free.burst", "valid integer"),
        ({**GOOD_PLAN, "burst": True}, "aimass:plans.free.burst", "valid integer"),
        ({**GOOD_PLAN, "monthly_units": 0}, "aimass:plans.free.monthly_units", "greater than 0"),
        ({"rate_per_s": 2, "burst": 5}, "aimass:plans.free.monthly_units", "Field required"),
        ({**GOOD_PLAN, "quota": 10}, "aimass:plans.free.quota", "Extra inputs are not permitted"),
        (5, "aimass:plans.free", "valid dictionary"),
        ({**GOOD_PLAN, "rate_per_s": None}, "aimass:plans.free", "both numbers, or both null"),
        ({**GOOD_PLAN, "burst": None}, "aimass:plans.free", "both numbers, or both null"),
    ],
)
def test_bad_plans_name_the_plan_and_field(plan: Any, key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"CDK context '{key}': .*{message}"):
        ServingConfig.from_context({"aimass:plans": {"default": GOOD_PLAN, "free": plan}})


@pytest.mark.parametrize("name", ["Free", "free plan", "1st", "", "x" * 41])
def test_plan_names_are_checked(name: str) -> None:
    with pytest.raises(ConfigError, match=r"CDK context 'aimass:plans': Value error, plan names are"):
        ServingConfig.from_context({"aimass:plans": {name: GOOD_PLAN}})


def test_plans_as_the_functions_get_them() -> None:
    config = ServingConfig.from_context(
        {"aimass:plans": {"b": GOOD_PLAN, "a": {**GOOD_PLAN, "rate_per_s": 0.25, "batch_price_factor": 0.4}}}
    )
    assert json.loads(config.plans_json) == {
        "a": {"rate_per_s": 0.25, "burst": 5, "monthly_units": 1000, "batch_price_factor": 0.4},
        "b": {"rate_per_s": 2.0, "burst": 5, "monthly_units": 1000, "batch_price_factor": 0.5},  # the default
    }
    assert list(json.loads(config.plans_json)) == ["a", "b"]


def test_override_values_must_be_tables() -> None:
    with pytest.raises(ConfigError, match=r"CDK context 'aimass:functionOverrides.text': .*dictionary \(got 3008\)"):
        ServingConfig.from_context({"aimass:functionOverrides": {"text": 3008}})


@pytest.mark.parametrize("key", ["aimass:textMemoryMB", "aimass:textMemoryMb"])
def test_unknown_keys_are_rejected(key: str) -> None:
    # The per-function keys moved to functions/<domain>/function.toml; the old ones are refused.
    with pytest.raises(ConfigError, match=key):
        ServingConfig.from_context({key: 4096})


def test_other_context_is_ignored() -> None:
    config = ServingConfig.from_context({"@aws-cdk/core:checkSecretUsage": True, "cli-telemetry": False})
    assert config == ServingConfig()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("aimass:logRetentionDays", 10),
        ("aimass:aliasCheckSeconds", "-5"),
        ("aimass:plans", "{}"),
        ("aimass:latencyAlarmMs", "-1"),
        ("aimass:filesExpireDays", "0"),
    ],
)
def test_build_app_rejects_bad_context_before_building(tmp_path: Path, key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"CDK context '{key}'"):
        build_app({key: value}, outdir=str(tmp_path))
    assert not list(tmp_path.iterdir())  # nothing synthesized


# --- functions/<domain>/function.toml ---------------------------------------------------------


def test_every_function_directory_has_a_valid_function_toml() -> None:
    assert function_domains(REPO_ROOT) == DOCKERFILE_DOMAINS
    specs = discover_functions(REPO_ROOT, ServingConfig())
    assert sorted(specs) == DOCKERFILE_DOMAINS
    for domain, spec in specs.items():
        raw = tomllib.loads((REPO_ROOT / spec.settings_file).read_text(encoding="utf-8"))
        assert spec.dockerfile == f"functions/{domain}/Dockerfile"
        assert spec.settings_file == f"functions/{domain}/function.toml"
        assert spec.settings.memory_mb == raw["memory_mb"]
        assert spec.settings.timeout_s == raw["timeout_s"] <= API_INTEGRATION_TIMEOUT_S
        assert spec.settings.architecture == raw["architecture"]
        assert spec.settings.routes == tuple(raw["routes"])


def test_text_function_settings() -> None:
    text = discover_functions(REPO_ROOT, ServingConfig())["text"].settings
    assert (text.memory_mb, text.timeout_s, text.architecture) == (1769, 29, "x86_64")
    assert text.routes == ("/v1/embeddings",)
    assert text.reserved_concurrency is None
    # 1,769 MB buys one full vCPU: one intra-op thread.
    assert text.intra_op_threads == 1


def test_function_tomls_cite_where_their_sizes_come_from() -> None:
    # The sizes themselves are checked against the committed sizing record by
    # tests/unit/test_bench_sizing_record.py; here, every file names the record its size follows (or, for a
    # function sized otherwise, the script that measures it), so a reader can find the measurement.
    for name in (*DOCKERFILE_DOMAINS, AUTHORIZER_FUNCTION):
        toml = REPO_ROOT / "functions" / name / "function.toml"
        source = SIZED_OTHERWISE[name].by if name in SIZED_OTHERWISE else "bench/records/sizing.json"
        assert source in toml.read_text(encoding="utf-8"), (toml, source)


def test_function_config_is_frozen() -> None:
    config = FunctionConfig(memory_mb=1024, timeout_s=10, architecture="x86_64")
    with pytest.raises(ValueError, match="frozen"):
        config.memory_mb = 4096  # type: ignore[misc]


@pytest.mark.parametrize(("memory_mb", "threads"), [(128, 1), (1769, 1), (1770, 2), (3538, 2), (3539, 3), (10240, 6)])
def test_intra_op_threads_follow_memory(memory_mb: int, threads: int) -> None:
    assert FunctionConfig(memory_mb=memory_mb, timeout_s=10, architecture="x86_64").intra_op_threads == threads


def test_load_function_config(tmp_path: Path) -> None:
    path = tmp_path / "function.toml"
    path.write_text(VALID_TOML, encoding="utf-8")
    config = load_function_config(path)
    assert config == FunctionConfig(memory_mb=2048, timeout_s=20, architecture="arm64", routes=("/v1/extra",))
    assert load_function_config(path, {"memory_mb": 4096, "reserved_concurrency": 5}).model_dump() == {
        **config.model_dump(),
        "memory_mb": 4096,
        "reserved_concurrency": 5,
    }


@pytest.mark.parametrize(
    ("replace", "key", "message"),
    [
        ("memory_mb = 64", "memory_mb", "greater than or equal to 128"),
        ("memory_mb = 20000", "memory_mb", "less than or equal to 10240"),
        ('memory_mb = "lots"', "memory_mb", "valid integer"),
        ("timeout_s = 60", "timeout_s", "less than or equal to 29"),
        ('architecture = "riscv"', "architecture", "'x86_64' or 'arm64'"),
        ('routes = ["v1/no-slash"]', "routes", "route 'v1/no-slash': must start with '/'"),
        ('routes = ["/v1/a", "/v1/a"]', "routes", "listed more than once"),
        ("memory_gb = 3", "memory_gb", "Extra inputs are not permitted"),
    ],
)
def test_bad_function_toml_names_file_and_key(tmp_path: Path, replace: str, key: str, message: str) -> None:
    path = tmp_path / "function.toml"
    name = replace.split(" = ")[0]
    lines = [line for line in VALID_TOML.splitlines() if not line.startswith(f"{name} =")]
    path.write_text("\n".join([*lines, replace]) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"{path}: key '{key}': .*{message}"):
        load_function_config(path)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "function.toml"
    path.write_text('architecture = "x86_64"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_function_config(path)
    assert f"{path}: key 'memory_mb': Field required" in str(raised.value)
    assert f"{path}: key 'timeout_s': Field required" in str(raised.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"function.toml: missing; every functions/<domain>/ with a Dockerfile"):
        load_function_config(tmp_path / "function.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("memory_mb = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.toml: not valid TOML: .*line 1"):
        load_function_config(broken)


def _checkout(tmp_path: Path, *domains: str) -> Path:
    for domain in domains:
        (tmp_path / "functions" / domain).mkdir(parents=True)
        (tmp_path / "functions" / domain / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
        (tmp_path / "functions" / domain / "function.toml").write_text(VALID_TOML, encoding="utf-8")
    (tmp_path / "functions" / "packaging").mkdir()  # no Dockerfile: not a function
    return tmp_path


def test_discover_functions_applies_overrides(tmp_path: Path) -> None:
    repo = _checkout(tmp_path, "alpha", "beta")
    config = ServingConfig.from_context({"aimass:functionOverrides": {"beta": {"memory_mb": 512}}})
    specs = discover_functions(repo, config)
    assert sorted(specs) == ["alpha", "beta"]
    assert (specs["alpha"].settings.memory_mb, specs["beta"].settings.memory_mb) == (2048, 512)


def test_overrides_are_validated_naming_file_and_context_key(tmp_path: Path) -> None:
    repo = _checkout(tmp_path, "alpha")
    config = ServingConfig.from_context({"aimass:functionOverrides": {"alpha": {"timeout_s": 900}}})
    with pytest.raises(
        ConfigError, match=r"functions/alpha/function.toml \(with CDK context 'aimass:functionOverrides'.*'timeout_s'"
    ):
        discover_functions(repo, config)


def test_overrides_for_a_domain_without_a_function_are_rejected(tmp_path: Path) -> None:
    repo = _checkout(tmp_path, "alpha")
    config = ServingConfig.from_context({"aimass:functionOverrides": {"gamma": {"memory_mb": 512}}})
    with pytest.raises(ConfigError, match=r"'aimass:functionOverrides': no function for domain\(s\) \['gamma'\]"):
        discover_functions(repo, config)


def test_a_dockerfile_without_function_toml_is_an_error(tmp_path: Path) -> None:
    repo = _checkout(tmp_path, "alpha")
    (repo / "functions" / "alpha" / "function.toml").unlink()
    with pytest.raises(ConfigError, match=r"functions/alpha/function.toml: missing"):
        discover_functions(repo, ServingConfig())


# --- functions/authorizer: a function, not a domain ----------------------------------------------------


def _with_authorizer(tmp_path: Path, toml: str = 'memory_mb = 512\ntimeout_s = 3\narchitecture = "x86_64"\n') -> Path:
    repo = _checkout(tmp_path, "alpha")
    (repo / "functions" / AUTHORIZER).mkdir()
    (repo / "functions" / AUTHORIZER / "Dockerfile").write_text("FROM scratch\n", encoding="utf-8")
    (repo / "functions" / AUTHORIZER / "function.toml").write_text(toml, encoding="utf-8")
    return repo


def test_the_authorizer_is_no_domain(tmp_path: Path) -> None:
    assert AUTHORIZER == AUTHORIZER_FUNCTION
    assert (REPO_ROOT / "functions" / AUTHORIZER / "Dockerfile").is_file()
    assert AUTHORIZER not in function_domains(REPO_ROOT)
    repo = _with_authorizer(tmp_path)
    assert function_domains(repo) == ["alpha"]
    assert sorted(discover_functions(repo, ServingConfig())) == ["alpha"]


def test_the_authorizers_settings() -> None:
    spec = load_authorizer_function(REPO_ROOT, ServingConfig())
    raw = tomllib.loads((REPO_ROOT / "functions/authorizer/function.toml").read_text(encoding="utf-8"))
    assert (spec.dockerfile, spec.settings_file) == (
        "functions/authorizer/Dockerfile",
        "functions/authorizer/function.toml",
    )
    assert (spec.settings.memory_mb, spec.settings.timeout_s) == (raw["memory_mb"], raw["timeout_s"])
    assert spec.settings.routes == ()


def test_the_authorizer_takes_overrides(tmp_path: Path) -> None:
    # aimass:functionOverrides may resize it like a domain's function; it is no unknown domain.
    config = ServingConfig.from_context({"aimass:functionOverrides": {AUTHORIZER: {"memory_mb": 1024}}})
    repo = _with_authorizer(tmp_path)
    assert sorted(discover_functions(repo, config)) == ["alpha"]
    assert load_authorizer_function(repo, config).settings.memory_mb == 1024


def test_the_authorizer_answers_no_route(tmp_path: Path) -> None:
    repo = _with_authorizer(tmp_path, VALID_TOML)
    with pytest.raises(ConfigError, match=r"functions/authorizer/function.toml: key 'routes': the authorizer answers"):
        load_authorizer_function(repo, ServingConfig())


def test_the_edge_authorizer_needs_its_function(tmp_path: Path) -> None:
    repo = _checkout(tmp_path, "alpha")
    with pytest.raises(ConfigError, match=r"functions/authorizer/Dockerfile: missing; .*'aimass:edgeAuthorizer'"):
        load_authorizer_function(repo, ServingConfig())
