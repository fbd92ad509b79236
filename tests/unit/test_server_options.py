"""Server mode's start, from the environment a container gives it: where to listen, how many workers, how many
ONNX Runtime threads each (the cores the container may use, its cgroup quota counted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimass.settings import Settings
from aimass_server.launch import worker_environment
from aimass_server.options import DEFAULT_HOST, DEFAULT_PORT, OptionError, ServerOptions, server_options
from aimass_server.sizing import available_cores, worker_settings


def test_a_container_listens_on_every_interface_at_8080_with_a_worker_per_core_by_default() -> None:
    assert server_options({}) == ServerOptions(host=DEFAULT_HOST, port=DEFAULT_PORT, workers=None)
    given = {"PORT": "9000", "AIMASS_WORKERS": "3", "AIMASS_HOST": "127.0.0.1"}
    assert server_options(given) == ServerOptions(host="127.0.0.1", port=9000, workers=3)


@pytest.mark.parametrize(("name", "value"), [("PORT", "http"), ("PORT", "70000"), ("AIMASS_WORKERS", "0")])
def test_an_unusable_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(OptionError, match=f"{name} must be a whole number .* got '{value}'"):
        server_options({name: value})


@pytest.mark.parametrize(
    ("files", "cores"),
    [
        ({"cpu.max": "max 100000\n"}, None),  # cgroup v2, no quota: the affinity decides
        ({"cpu.max": "150000 100000\n"}, 2),  # docker run --cpus 1.5: two workers' worth, rounded up
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),  # no cgroup files at all
    ],
)
def test_the_cores_are_the_affinity_capped_by_the_cgroup_quota(
    tmp_path: Path, files: dict[str, str], cores: int | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    affinity = available_cores(tmp_path / "absent")
    assert available_cores(tmp_path) == (min(affinity, cores) if cores else affinity)


def test_each_worker_gets_its_share_of_the_cores_unless_the_settings_name_a_count() -> None:
    settings = Settings(metering="off")
    assert worker_settings(settings, workers=2, cores=8).intra_op_threads == 4
    assert worker_settings(settings, workers=4, cores=2).intra_op_threads == 1
    fixed = Settings(metering="off", intra_op_threads=3)
    assert worker_settings(fixed, workers=2, cores=8).intra_op_threads == 3


def test_the_workers_read_what_the_supervisor_decided() -> None:
    # The workers are spawned and build Settings() from the environment: the chosen values must round-trip.
    chosen = Settings(metering="off", intra_op_threads=2, micro_batch_rows=32, model_store=Path("/var/task/ms"))
    environment = worker_environment(chosen)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment.items():
            patch.setenv(key, value)
        read = Settings(metering="off")
    assert (read.intra_op_threads, read.micro_batch_rows, read.model_store) == (2, 32, Path("/var/task/ms"))
    assert read.plans == chosen.plans
