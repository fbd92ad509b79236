"""The management API's request and response bodies (``aimass.http.model_admin``), and how store records become them.

Requests are validated strictly, as JSON types (a count is a JSON integer, a flag a JSON boolean), with unknown
fields refused; every answer about a version is built from its manifest, every answer about a model from its
versions and aliases, so what the API says is what the store holds.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from aimass.files.base import FILE_ID
from aimass.importing.fit import TASKS
from aimass.schema import Schema
from aimass.store.aliases import AliasChange, CanaryPolicy, ModelAliases
from aimass.store.manifest import ModelManifest, TensorSpec

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
VERSION_PATTERN = r"^[1-9][0-9]{0,8}$"
_FILE: JsonDict = {"pattern": FILE_ID.pattern}
TaskName = Literal["auto", "tensors", "image-classification", "tabular-classification", "embedding"]
assert set(TaskName.__args__) == set(TASKS)  # type: ignore[attr-defined]  # one list, the importer's


class _Strict(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)


class ImageScaling(_Strict):
    """How an image classifier's images are scaled: ``(pixel * scale - mean) / std`` per channel."""

    scale: float = Field(default=1 / 255, gt=0, allow_inf_nan=False)
    mean: list[float] = Field(default=[0.0], min_length=1, max_length=3)
    std: list[float] = Field(default=[1.0], min_length=1, max_length=3)


class ImportModel(_Strict):
    """A version to import: an uploaded file (``POST /v1/files`` or ``/v1/uploads`` for large ones, any purpose)."""

    name: str = Field(description="the model's name in the API", json_schema_extra={"pattern": NAME_PATTERN})
    file_id: str = Field(description="the uploaded ONNX file", json_schema_extra=_FILE)
    task: TaskName = Field(default="auto", description="what it does; auto: found from its shape")
    labels: list[str] | None = Field(default=None, min_length=1, description="class names, one per score column")
    description: str = Field(default="", max_length=2000)
    license: str = Field(default="", max_length=200)
    tokenizer_file_id: str | None = Field(
        default=None,
        description="an uploaded tokenizer.json: makes a text encoder an embedder",
        json_schema_extra=_FILE,
    )
    samples: dict[str, Any] | None = Field(
        default=None, description='inputs it accepts, {"inputs": {name: rows}}; default: synthesized'
    )
    feature_names: list[str] | None = Field(default=None, min_length=1, description="a table's columns, in order")
    image: ImageScaling | None = None
    quality: dict[str, Any] = Field(default_factory=dict, description="what its owner measured (an evaluation's)")
    promote: bool = Field(default=False, description="make it the production version once checked")
    canary_percent: int | None = Field(
        default=None, ge=1, le=99, description="send this share of unpinned requests to it instead (a checkpoint)"
    )
    canary_policy: Policy | None = Field(default=None, description="with canary_percent: end the canary by itself")
    reason: str = Field(default="", max_length=500, description="recorded in the aliases history")
    visibility: Literal["tenant", "all"] = Field(
        default="tenant", description="who may call it: the importing key's tenant only, or every tenant"
    )


class MoveAlias(_Strict):
    version: str = Field(json_schema_extra={"pattern": VERSION_PATTERN})
    reason: str = Field(default="", max_length=500)
    force: bool = Field(default=False, description="move it even to a version that fails its check")


class Policy(_Strict):
    """A canary policy: promoted by the serving processes once it has served ``min_requests`` within the bounds,
    rolled back as soon as it is over one, or its validation samples fail where it loads."""

    min_requests: int = Field(ge=1, le=100_000_000)
    max_error_rate: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)
    max_latency_ms: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="p95 inference time")

    def rules(self) -> CanaryPolicy:
        return CanaryPolicy(**self.model_dump())


class SetCanary(MoveAlias):
    percent: int = Field(ge=1, le=99, description="share of unpinned requests the canary takes")
    policy: Policy | None = Field(default=None, description="end the canary by itself; null: an operator ends it")


class Rollback(_Strict):
    reason: str = Field(default="", max_length=500)


class Tensor(Schema):
    name: str
    datatype: str
    shape: list[int]

    @classmethod
    def of(cls, spec: TensorSpec) -> Tensor:
        return cls(name=spec.name, datatype=spec.datatype, shape=list(spec.shape))


class Validation(Schema):
    """A version's validation samples: what every load must reproduce before it serves."""

    file: str | None = Field(description="the samples file; null: the version has none")
    inputs: dict[str, list[int]] = Field(default_factory=dict, description="each sample input's shape")
    outputs: dict[str, list[int]] = Field(default_factory=dict, description="each expected output's shape")
    tolerance: dict[str, float] = Field(default_factory=dict)


class Version(Schema):
    version: str
    created_at: str
    domain: str
    task: str
    description: str
    source: str
    license: str
    bytes: int = Field(description="the version's files, together")
    inputs: list[Tensor]
    outputs: list[Tensor]
    labels: list[str] | None
    quality: dict[str, Any]
    validation: str | None = Field(description="its validation samples file (POST .../verify runs them)")
    graph: dict[str, Any] | None = Field(description="what an import found in the graph: opsets, operators, axes")
    derived_from: str | None
    encrypted: bool
    tenant: str | None = Field(description="the only tenant whose keys may call it; null: every tenant")
    state: str | None = Field(
        default=None, description="READY or UNAVAILABLE in the process that answered; null: not loaded there"
    )
    reason: str | None = Field(default=None, description="why it is UNAVAILABLE there")


class Aliases(Schema):
    serving: str | None = Field(description="the version unpinned requests get")
    production: str | None
    canary: str | None
    canary_percent: int
    canary_policy: CanaryPolicy | None
    history: list[AliasChange]

    @classmethod
    def of(cls, aliases: ModelAliases, versions: list[str]) -> Aliases:
        return cls(
            serving=aliases.serving(versions),
            production=aliases.production,
            canary=aliases.canary,
            canary_percent=aliases.canary_percent,
            canary_policy=aliases.canary_policy,
            history=list(aliases.history),
        )


class ModelSummary(Schema):
    name: str
    versions: list[str]
    serving: str | None
    canary: str | None
    canary_percent: int
    domain: str | None = Field(description="of the serving version")
    task: str | None = Field(description="of the serving version")


class ModelList(Schema):
    models: list[ModelSummary]


class Model(Schema):
    name: str
    versions: list[Version]
    aliases: Aliases


class Imported(Schema):
    model: str
    version: Version
    created: bool = Field(description="false: the newest version already was this import (a retry)")
    memory_needed_mb: int | None = Field(description="what serving it takes, beside the version it replaces")
    aliases: Aliases
    endpoints: list[str] = Field(description="where it answers")


class Check(Schema):
    """A version checked as a function checks one before serving it."""

    version: str
    servable: bool
    problem: str | None = Field(description="why it cannot serve (null: it can)")
    unchecked: str | None = Field(description="what this process could not check, and why")
    checked: str = Field(description="how far the check went")
    validation: Validation


def version_of(manifest: ModelManifest, state: tuple[str, str] | None = None) -> Version:
    """``state``: (READY or UNAVAILABLE, the public reason) where the answering process knows the version."""
    graph = manifest.preprocessing.get("graph")
    return Version(
        version=manifest.version,
        created_at=manifest.created_at,
        domain=manifest.domain,
        task=manifest.task,
        description=manifest.description,
        source=manifest.source,
        license=manifest.license,
        bytes=sum(entry.size for entry in manifest.files),
        inputs=[Tensor.of(spec) for spec in manifest.inputs],
        outputs=[Tensor.of(spec) for spec in manifest.outputs],
        labels=list(manifest.labels) if manifest.labels is not None else None,
        quality=dict(manifest.quality),
        validation=manifest.validation,
        graph=graph if isinstance(graph, dict) else None,
        derived_from=manifest.derived_from,
        encrypted=manifest.encryption is not None,
        tenant=manifest.tenant,
        state=state[0] if state else None,
        reason=(state[1] or None) if state else None,
    )


def validation_of(file: str | None, samples: bytes | None) -> Validation:
    if file is None or samples is None:
        return Validation(file=file)
    try:
        document = json.loads(samples)
        return Validation(
            file=file,
            inputs={name: _shape(value) for name, value in document.get("inputs", {}).items()},
            outputs={name: _shape(value) for name, value in document.get("outputs", {}).items()},
            tolerance={str(k): float(v) for k, v in document.get("tolerance", {}).items()},
        )
    except (ValueError, AttributeError, TypeError):
        return Validation(file=file)


def _shape(value: Any) -> list[int]:
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return shape


def endpoints(manifest: ModelManifest) -> list[str]:
    found = [f"POST /v2/models/{manifest.name}/infer"]
    tasks = {"image-classification": "classify-images", "tabular-classification": "classify-rows", "embedding": "embed"}
    if manifest.domain == "tensor" and manifest.task in tasks:
        found.append(f"POST /v1/tensor/{tasks[manifest.task]}")
    if manifest.task == "embedding":
        found.append("POST /v1/embeddings")
    return found
