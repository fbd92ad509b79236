"""The management API for models, for keys with the ``admin`` scope: what ``aimass models`` does, over HTTPS.

    POST /v1/admin/models                                   import an uploaded file as the next version
    GET  /v1/admin/models                                   every model: versions, serving, canary
    GET  /v1/admin/models/{name}                            its versions (quality, validation, graph) and aliases
    GET  /v1/admin/models/{name}/versions/{version}         one version
    POST /v1/admin/models/{name}/versions/{version}/verify  check it as a function would: files, load, samples
    POST /v1/admin/models/{name}/promote                    {version, reason, force}
    POST /v1/admin/models/{name}/canary                     {version, percent, policy, reason, force}
    POST /v1/admin/models/{name}/rollback                   {reason}

A training pipeline uploads its file with the Files API (``POST /v1/files``, or the Uploads API in resumable parts
for a large one, presigned S3 part URLs on AWS), then imports it by its id: the checks and the description are
``aimass.importing``'s, the moves ``aimass.serving.lifecycle``'s, as on the command line, so a pipeline needs an
admin key and no AWS credentials. The store is the one this process serves from (a directory locally, the model
bucket on AWS); after a change, this process follows it at once (the other functions within their alias check
interval).
"""

from __future__ import annotations

import functools
import logging
import re
import tempfile
from collections.abc import Callable
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Body, Path, Response, status

from aimass.errors import AimassError, InvalidInput, ModelTooLarge, NotFound, UnsupportedModel
from aimass.files.base import FileStore
from aimass.http.admin import Admin
from aimass.http.error_docs import BODY, KEYED, Responses, responses
from aimass.http.model_wire import (
    NAME_PATTERN,
    VERSION_PATTERN,
    Aliases,
    Check,
    Imported,
    ImportModel,
    Model,
    ModelList,
    ModelSummary,
    MoveAlias,
    Rollback,
    SetCanary,
    Version,
    endpoints,
    validation_of,
    version_of,
)
from aimass.importing.fit import ImageOptions
from aimass.importing.importer import ImportSpec, import_graph
from aimass.importing.memory import function_memory_mb
from aimass.importing.publishing import publish_imported
from aimass.serving import lifecycle, readiness
from aimass.serving.boot import lazy_unsealer
from aimass.serving.registry import ModelRegistry
from aimass.serving.session import SessionFactory
from aimass.serving.updater import ModelUpdater
from aimass.settings import Settings
from aimass.store.base import WritableModelStore
from aimass.store.factory import open_store

log = logging.getLogger("aimass.http")

PREFIX = "/v1/admin/models"
OVERRIDE = '"force": true'
_NAME, _VERSION = re.compile(NAME_PATTERN), re.compile(VERSION_PATTERN)
Name = Annotated[str, Path(description="the model's name", json_schema_extra={"pattern": NAME_PATTERN})]
VersionNumber = Annotated[str, Path(description="a version number", json_schema_extra={"pattern": VERSION_PATTERN})]
RollbackBody = Annotated[Rollback | None, Body(description="optional; none or null: no reason recorded")]
LOOKUP: tuple[type[AimassError], ...] = (InvalidInput, NotFound, *KEYED)
MOVES: tuple[type[AimassError], ...] = (*BODY, NotFound, *KEYED)


def model_admin_router(
    settings: Settings,
    files: FileStore,
    registry: ModelRegistry,
    *,
    updater: ModelUpdater | None = None,
    store: Callable[[], WritableModelStore] | None = None,
) -> APIRouter:
    """``store`` opens the writable model store on first use (a cold start does not pay for it): by default the
    one the settings name, the one this process serves from."""
    router = APIRouter(prefix=PREFIX, tags=["admin: models"])
    opened = functools.cache(store or (lambda: open_store(settings, unsealer=lazy_unsealer(settings))))
    sessions = SessionFactory(settings)

    def followed() -> None:
        # This process serves the change now; the others at their next alias check.
        if updater is not None:
            updater.check()

    def summary(name: str) -> Aliases:
        target = opened()
        return Aliases.of(target.aliases(name), target.versions(name))

    imported_errors = (*BODY, UnsupportedModel, ModelTooLarge, NotFound, *KEYED)
    created_doc: Responses = {
        200: {"description": "the newest version already was this import (a retry): nothing changed"}
    }

    @router.post("", status_code=status.HTTP_201_CREATED, responses={**responses(*imported_errors), **created_doc})
    def import_model(body: ImportModel, caller: Admin, response: Response) -> Imported:
        name = _checked(body.name, _NAME, "name")
        graph = _read(files, caller.tenant, body.file_id, "file_id")
        tokenizer = (
            _read(files, caller.tenant, body.tokenizer_file_id, "tokenizer_file_id") if body.tokenizer_file_id else None
        )
        spec = ImportSpec(
            name=name,
            task=body.task,
            labels=tuple(body.labels) if body.labels else None,
            description=body.description,
            license=body.license,
            feature_names=tuple(body.feature_names) if body.feature_names else None,
            image=ImageOptions(body.image.scale, tuple(body.image.mean), tuple(body.image.std)) if body.image else None,
            filename=graph[0],
            quality=body.quality,
            tenant=caller.tenant if body.visibility == "tenant" else None,
        )
        target = opened()
        with tempfile.TemporaryDirectory(prefix="aimass-import-") as scratch:
            work = FilePath(scratch) / name
            done = import_graph(
                graph[1], spec, work, sessions,
                tokenizer=tokenizer[1] if tokenizer else None, samples=body.samples,
                memory_limit_mb=function_memory_mb(settings.import_memory_mb),
            )  # fmt: skip
            published, created = publish_imported(target, work, done.manifest, reserved=settings.reserved_model_names)
        log.info("admin key %s (tenant %s) imported model '%s' version %s", caller.key_id, caller.tenant, name,
                 published.version)  # fmt: skip
        version = published.version
        if body.promote:
            lifecycle.checked_move(
                target, settings, name, version, lifecycle.promote(name, version), body.reason, force=False,
                override=OVERRIDE,
            )  # fmt: skip
        elif body.canary_percent is not None:
            policy = body.canary_policy.rules() if body.canary_policy else None
            move = lifecycle.canary(name, version, body.canary_percent, policy)
            lifecycle.checked_move(target, settings, name, version, move, body.reason, force=False, override=OVERRIDE)
        followed()
        response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Imported(
            model=name,
            version=version_of(published, _state(registry, name, version)),
            created=created,
            memory_needed_mb=done.needed_mb,
            aliases=summary(name),
            endpoints=endpoints(published),
        )

    @router.get("", responses=responses(*KEYED))
    def list_models(caller: Admin) -> ModelList:
        target = opened()
        found = []
        for name in target.model_names():
            versions = target.versions(name)
            aliases = target.aliases(name)
            serving = aliases.serving(versions)
            manifest = target.manifest(name, serving) if serving in versions else None
            found.append(
                ModelSummary(
                    name=name,
                    versions=versions,
                    serving=serving,
                    canary=aliases.canary,
                    canary_percent=aliases.canary_percent,
                    domain=manifest.domain if manifest else None,
                    task=manifest.task if manifest else None,
                )
            )
        return ModelList(models=found)

    @router.get("/{name}", responses=responses(*LOOKUP))
    def show_model(name: Name, caller: Admin) -> Model:
        target = opened()
        versions = lifecycle.known_versions(target, _checked(name, _NAME, "name"))
        return Model(
            name=name,
            versions=[version_of(target.manifest(name, v), _state(registry, name, v)) for v in versions],
            aliases=Aliases.of(target.aliases(name), versions),
        )

    @router.get("/{name}/versions/{version}", responses=responses(*LOOKUP))
    def show_version(name: Name, version: VersionNumber, caller: Admin) -> Version:
        target = opened()
        _known(target, name, version)
        return version_of(target.manifest(name, version), _state(registry, name, version))

    @router.post("/{name}/versions/{version}/verify", responses=responses(*LOOKUP))
    def verify_version(name: Name, version: VersionNumber, caller: Admin) -> Check:
        target = opened()
        _known(target, name, version)
        found = readiness.check(target, settings, name, version)
        samples = None
        manifest = found.manifest or target.manifest(name, version)
        if found.servable and found.unchecked is None and manifest.validation is not None:
            samples = target.fetch(name, version).read(manifest.validation)
        return Check(
            version=version,
            servable=found.servable,
            problem=lifecycle.one_line(found.problem) if found.problem else None,
            unchecked=found.unchecked,
            checked=found.loading() if found.servable else "refused",
            validation=validation_of(manifest.validation, samples),
        )

    @router.post("/{name}/promote", responses=responses(*MOVES))
    def promote(name: Name, body: MoveAlias, caller: Admin) -> Aliases:
        target = opened()
        version = _checked(body.version, _VERSION, "version")
        move = lifecycle.promote(_checked(name, _NAME, "name"), version)
        lifecycle.checked_move(target, settings, name, version, move, body.reason, force=body.force, override=OVERRIDE)
        log.info("admin key %s promoted model '%s' version %s", caller.key_id, name, version)
        followed()
        return summary(name)

    @router.post("/{name}/canary", responses=responses(*MOVES))
    def set_canary(name: Name, body: SetCanary, caller: Admin) -> Aliases:
        target = opened()
        version = _checked(body.version, _VERSION, "version")
        policy = body.policy.rules() if body.policy else None
        move = lifecycle.canary(_checked(name, _NAME, "name"), version, body.percent, policy)
        lifecycle.checked_move(target, settings, name, version, move, body.reason, force=body.force, override=OVERRIDE)
        log.info("admin key %s made model '%s' version %s its canary", caller.key_id, name, version)
        followed()
        return summary(name)

    @router.post("/{name}/rollback", responses=responses(*MOVES))
    def rollback(name: Name, caller: Admin, body: RollbackBody = None) -> Aliases:
        target = opened()
        lifecycle.rollback(target, settings, _checked(name, _NAME, "name"), (body or Rollback()).reason)
        log.info("admin key %s rolled model '%s' back", caller.key_id, name)
        followed()
        return summary(name)

    return router


def _checked(value: str, pattern: re.Pattern[str], param: str) -> str:
    if not pattern.fullmatch(value):
        raise InvalidInput(f"{param} '{value}' does not match {pattern.pattern}", param=param)
    return value


def _known(target: WritableModelStore, name: str, version: str) -> None:
    versions = lifecycle.known_versions(target, _checked(name, _NAME, "name"))
    if _checked(version, _VERSION, "version") not in versions:
        raise NotFound(
            f"model '{name}' has no version '{version}'; its versions: {', '.join(versions)}", param="version"
        )


def _read(files: FileStore, tenant: str, file_id: str, param: str) -> tuple[str, bytes]:
    """An uploaded file the caller's tenant owns or was granted: its name and bytes."""
    record = files.readable(tenant, file_id)
    opened = files.open(record.tenant, file_id) if record is not None else None
    if opened is None:
        raise NotFound(f"no file '{file_id}' among your tenant's files (upload it with POST /v1/files)", param=param)
    return opened[0].filename, b"".join(opened[1])


def _state(registry: ModelRegistry, name: str, version: str) -> tuple[str, str] | None:
    for state in registry.states():
        if state.name == name and state.version == version:
            return state.state, state.reason
    return None
