"""The canary policy: a checkpoint published as a canary is promoted or rolled back by the serving process itself.

GIVEN a model in production (version 1) and a checkpoint (version 2) made its canary with a policy, WHEN clients
keep calling the model while the process checks its aliases, THEN a canary whose validation samples fail, whose
errors pass the policy's rate or whose latency passes its bound is rolled back, and a healthy one promoted, each
recorded in the aliases history with the numbers it was decided on; and no request that production answered
failed meanwhile.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from aimass.http.app import build_app, canary_judge
from aimass.importing.importer import ImportSpec, import_graph
from aimass.serving import lifecycle
from aimass.serving.registry import ModelRegistry
from aimass.serving.runtime import Prediction, Tensor
from aimass.serving.session import SessionFactory
from aimass.serving.updater import ModelUpdater
from aimass.serving.validation import validate
from aimass.settings import Settings
from aimass.store.aliases import CanaryPolicy
from aimass.store.local import LocalModelStore
from aimass.store.manifest import file_entry, read_manifest, write_manifest
from tests import tiny_imports as tiny

NAME = "churn"
ROWS = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [[0.1, 0.2, 0.3, 0.4]]}]}


@dataclass
class Calls:
    """What the clients got: (status, the version that answered, or None for an error)."""

    answers: list[tuple[int, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, version: str | None) -> None:
        with self.lock:
            self.answers.append((status, version))

    def failed(self) -> list[tuple[int, str | None]]:
        return [a for a in self.answers if a[0] != 200]


@dataclass
class Serving:
    store: LocalModelStore
    settings: Settings
    registry: ModelRegistry
    updater: ModelUpdater
    client: TestClient

    def call(self, calls: Calls, count: int) -> None:
        for _ in range(count):
            answer = self.client.post(f"/v2/models/{NAME}/infer", json=ROWS)
            calls.add(answer.status_code, answer.json().get("model_version") if answer.status_code == 200 else None)

    def canary(self, policy: CanaryPolicy, percent: int = 50, *, force: bool = False) -> None:
        move = lifecycle.canary(NAME, "2", percent, policy)
        lifecycle.checked_move(self.store, self.settings, NAME, "2", move, "epoch 2", force=force)


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[Serving]:
    root = tmp_path / "store"
    tiny.import_into(root, tiny.mlp(seed=1), NAME)
    store = LocalModelStore(root)
    settings = Settings(model_store=root, alias_check_s=0, intra_op_threads=1)
    lifecycle.checked_move(store, settings, NAME, "1", lifecycle.promote(NAME, "1"), "", force=False)
    registry = ModelRegistry(store, SessionFactory(settings), validate=validate)
    registry.load_all()
    updater = ModelUpdater(registry, interval_s=0, judge=canary_judge(registry))
    with TestClient(build_app(settings, registry=registry), raise_server_exceptions=False) as client:
        yield Serving(store, settings, registry, updater, client)


def publish_checkpoint(serving: Serving, tmp_path: Path, *, wrong_samples: bool = False) -> None:
    """Version 2: another checkpoint of the same model; with ``wrong_samples``, samples it does not reproduce."""
    work = tmp_path / "checkpoint"
    import_graph(tiny.mlp(seed=2), ImportSpec(name=NAME), work, SessionFactory(serving.settings))
    if wrong_samples:
        samples = json.loads((work / "samples.json").read_text())
        samples["outputs"]["y"] = [[v + 0.5 for v in row] for row in samples["outputs"]["y"]]
        (work / "samples.json").write_text(json.dumps(samples))
        manifest = read_manifest(work)
        files = tuple(file_entry(work, entry.path) for entry in manifest.files)
        write_manifest(work, manifest.model_copy(update={"files": files}))
    assert serving.store.publish(work).version == "2"


def while_calling(serving: Serving, calls: Calls, action: Callable[[], Any], *, before: int = 20) -> None:
    """Clients keep calling on two threads while ``action`` runs (after ``before`` calls each)."""
    started = threading.Barrier(3)

    def client() -> None:
        serving.call(calls, before)
        started.wait()
        serving.call(calls, 20)

    threads = [threading.Thread(target=client) for _ in range(2)]
    for thread in threads:
        thread.start()
    started.wait()
    action()
    for thread in threads:
        thread.join()


def history(serving: Serving) -> list[tuple[str, str | None, str | None, str]]:
    return [(c.action, c.production, c.canary, c.reason) for c in serving.store.aliases(NAME).history]


def test_a_canary_whose_validation_samples_fail_is_rolled_back_and_never_serves(
    serving: Serving, tmp_path: Path
) -> None:
    # GIVEN a checkpoint whose samples it does not reproduce, forced in as a canary with a policy
    publish_checkpoint(serving, tmp_path, wrong_samples=True)
    serving.canary(CanaryPolicy(min_requests=10), force=True)
    calls = Calls()
    # WHEN the process checks its aliases while clients call the model
    while_calling(serving, calls, serving.updater.check)
    serving.call(calls, 10)
    # THEN the canary is rolled back by the policy, with the reason, and every request was answered by production
    aliases = serving.store.aliases(NAME)
    assert (aliases.production, aliases.canary, aliases.canary_policy) == ("1", None, None)
    action, production, canary, reason = history(serving)[-1]
    assert (action, production, canary) == ("end-canary", "1", None)
    assert reason == "canary policy: version 2 cannot serve: its validation samples did not match (output 'y')"
    assert calls.failed() == [] and {version for _, version in calls.answers} == {"1"}


def test_a_canary_over_the_error_rate_is_rolled_back_with_production_unharmed(serving: Serving, tmp_path: Path) -> None:
    publish_checkpoint(serving, tmp_path)
    serving.canary(CanaryPolicy(min_requests=20, max_error_rate=0.1))
    serving.updater.check()  # the canary loads and takes half of the requests
    canary = serving.registry.loaded(NAME, "2")
    assert canary is not None and serving.registry.serving(NAME) == ("1", "2", 50)

    def engine_fault(inputs: Mapping[str, Tensor]) -> Prediction:
        raise RuntimeError("the checkpoint's engine failed")

    canary.predict = engine_fault  # type: ignore[method-assign]  # the checkpoint breaks while it serves
    calls = Calls()
    while_calling(serving, calls, serving.updater.check)
    serving.call(calls, 20)
    # THEN the policy ended the canary on the errors it saw, and every failure was the canary's own
    assert serving.store.aliases(NAME).canary is None and serving.registry.serving(NAME) == ("1", None, 0)
    action, _, _, reason = history(serving)[-1]
    seen = canary.observed.seen()
    assert action == "end-canary" and seen.errors > 2
    assert reason.startswith("canary policy: ") and "over the errors allowed (10.00% of 20 requests)" in reason
    failures = calls.failed()
    assert failures and len(failures) == seen.errors  # no request production answered failed
    assert all(version == "1" for status, version in calls.answers[-20:])  # after the rollback: production only


def test_a_canary_over_its_latency_bound_is_rolled_back_once_it_has_enough_requests(
    serving: Serving, tmp_path: Path
) -> None:
    publish_checkpoint(serving, tmp_path)
    serving.canary(CanaryPolicy(min_requests=5, max_latency_ms=2.0), percent=90)
    serving.updater.check()
    canary = serving.registry.loaded(NAME, "2")
    assert canary is not None
    predict = canary.predict

    def slow(inputs: Mapping[str, Tensor]) -> Prediction:
        time.sleep(0.01)
        return predict(inputs)

    canary.predict = slow  # type: ignore[method-assign]
    calls = Calls()
    serving.call(calls, 40)
    serving.updater.check()
    assert calls.failed() == []
    assert serving.store.aliases(NAME).canary is None
    assert "p95 over 2 ms" in history(serving)[-1][3]


def test_a_healthy_canary_is_promoted_once_it_has_served_enough(serving: Serving, tmp_path: Path) -> None:
    publish_checkpoint(serving, tmp_path)
    serving.canary(CanaryPolicy(min_requests=10, max_latency_ms=5000))
    serving.updater.check()
    calls = Calls()
    serving.updater.check()  # too early: nothing to decide yet
    assert serving.store.aliases(NAME).canary == "2"
    canary = serving.registry.loaded(NAME, "2")
    assert canary is not None
    while canary.observed.seen().requests < 10:
        serving.call(calls, 5)
    serving.updater.check()
    # THEN it is production, in the store and in the process, and the history says on what numbers
    assert serving.store.aliases(NAME).production == "2" and serving.registry.serving(NAME) == ("2", None, 0)
    action, production, canary_after, reason = history(serving)[-1]
    assert (action, production, canary_after) == ("promote", "2", None)
    assert reason.startswith("canary policy: 0 errors in ") and "within after 10 requests" in reason
    assert calls.failed() == []


def test_a_canary_that_is_moved_by_hand_meanwhile_is_left_as_it_was_moved(serving: Serving, tmp_path: Path) -> None:
    # The policy's move is made only while the aliases still name its canary: an operator's change stands.
    publish_checkpoint(serving, tmp_path)
    serving.canary(CanaryPolicy(min_requests=1))
    serving.updater.check()
    judge = serving.updater.judge
    assert judge is not None
    stale = serving.store.aliases(NAME)
    lifecycle.rollback(serving.store, serving.settings, NAME, "by hand")
    # The process has not read the move yet: the canary keeps its share until it has served (a request goes to
    # it by chance, 50 %), so the policy has a verdict to make.
    canary = serving.registry.loaded(NAME, "2")
    assert canary is not None
    while canary.observed.seen().requests < 1:
        serving.call(Calls(), 1)
    after = judge.judge(NAME, stale, serving.store.versions(NAME))
    assert after.canary is None and history(serving)[-1][3] == "by hand"


def test_a_policy_needs_a_request_count_and_sane_bounds() -> None:
    with pytest.raises(ValueError, match="min_requests"):
        CanaryPolicy(min_requests=0)
    with pytest.raises(ValueError, match="max_error_rate"):
        CanaryPolicy(min_requests=5, max_error_rate=2)
    assert CanaryPolicy(min_requests=5).describe() == "after 5 requests with at most 0.00% errors"
