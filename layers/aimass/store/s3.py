"""The S3 model store: ``<prefix><name>/<version>/<file>`` beside ``<prefix><name>/aliases.json``.

A publish uploads every file first and the manifest last, written only if absent, so a version is
listed (its manifest exists) only once all its files are in, and a half-published version never is. One
publish per model at a time holds a lease object (``<name>/.publish.lock``).

``fetch`` downloads into a ``DownloadCache`` (``aimass.store.cache``) keyed by checksum: each file
streamed from S3 is checked against its manifest entry's size and sha256 before the cache keeps it, and a
file the cache holds is not downloaded again.

``seed`` is the store baked into the function image: a version it holds with the same manifest is served
from there without a download, and a model the bucket holds no version of is served from the seed alone,
so a fresh deploy serves before anyone publishes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import socket
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from aimass.errors import AimassError, InvalidInput, ModelLoadError, NotFound
from aimass.store.aliases import ALIASES_FILE, ModelAliases, now
from aimass.store.base import ModelArtifact, ProgressCallback, Unsealer, parse_aliases, publication
from aimass.store.cache import DownloadCache
from aimass.store.local import LocalModelStore
from aimass.store.manifest import (
    INVALID_MANIFEST,
    MANIFEST_FILE,
    MISPLACED_MANIFEST,
    FileEntry,
    ModelManifest,
    integrity_failed,
    read_manifest,
    verify_files,
)

LEASE_FILE = ".publish.lock"
_PRECONDITION = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
UNREADABLE = "its files could not be read from the model store"


class _HashingSink:
    """A write-only file for ``download_fileobj``: not seekable, so the transfer manager writes the parts in
    order and the digest is that of the bytes as they land (in ``stream``, or nowhere)."""

    def __init__(self, stream: IO[bytes] | None) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        if self.stream is not None:
            self.stream.write(data)
        return len(data)


class S3ModelStore:
    """``WritableModelStore`` over an S3 bucket (the client is injected; ``aimass.store.factory`` makes one).

    ``cache`` keeps the fetched files.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str,
        cache: DownloadCache,
        *,
        seed: LocalModelStore | None = None,
        unsealer: Unsealer | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if not prefix or prefix.endswith("/") else f"{prefix}/"
        self.cache = cache
        self.seed = seed
        self.unsealer = unsealer

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    # Reading ------------------------------------------------------------------------------------------

    def model_names(self) -> list[str]:
        names = set(self._listed(self.prefix))
        if self.seed is not None:
            names.update(self.seed.model_names())  # a model the bucket holds is listed once either way
        return sorted(names)

    def versions(self, name: str) -> list[str]:
        published = self._published(name)
        if not published and self.seed is not None:
            return self.seed.versions(name)
        return published

    def manifest(self, name: str, version: str) -> ModelManifest:
        raw = self._get(self._key(name, version, MANIFEST_FILE))
        if raw is not None:
            return self._parse_manifest(raw, name, version)
        seed = self._seed_for(name)
        if seed is None:
            raise self._not_found(name, version)
        return seed.manifest(name, version)

    def fetch(self, name: str, version: str, *, progress: ProgressCallback | None = None) -> ModelArtifact:
        raw = self._get(self._key(name, version, MANIFEST_FILE))
        if raw is None:
            seed = self._seed_for(name)
            if seed is None:
                raise self._not_found(name, version)
            return dataclasses.replace(seed.fetch(name, version), unsealer=self.unsealer)
        manifest = self._parse_manifest(raw, name, version)
        baked = self._seed_copy(manifest)
        if baked is not None:
            return baked
        for entry in manifest.files:
            if self.cache.get(entry.sha256, entry.size) is None:
                with self.cache.put(entry.sha256) as stream:
                    self._download(self._key(name, version, entry.path), entry, stream, progress)
        return ModelArtifact(manifest=manifest, directory=self.cache.link(manifest), unsealer=self.unsealer)

    def evict(self, name: str, keep: Collection[str]) -> None:
        self.cache.evict(name, keep)

    def verify(self, name: str, version: str, *, progress: ProgressCallback | None = None) -> ModelManifest:
        raw = self._get(self._key(name, version, MANIFEST_FILE))
        if raw is None:
            seed = self._seed_for(name)
            if seed is None:
                raise self._not_found(name, version)
            return seed.verify(name, version, progress=progress)
        manifest = self._parse_manifest(raw, name, version)
        for entry in manifest.files:  # from the bucket itself, not the cache
            self._download(self._key(name, version, entry.path), entry, None, progress)
        return manifest

    def aliases(self, name: str) -> ModelAliases:
        key = self._key(name, ALIASES_FILE)
        raw = self._get(key)
        if raw is not None:
            return parse_aliases(raw, self._uri(key))
        seed = self._seed_for(name)
        return seed.aliases(name) if seed is not None else ModelAliases()

    # Writing ------------------------------------------------------------------------------------------

    def write_aliases(self, name: str, aliases: ModelAliases) -> None:
        self._put(self._key(name, ALIASES_FILE), aliases.model_dump_json(indent=2).encode())

    def update_aliases(self, name: str, change: Callable[[ModelAliases], ModelAliases]) -> ModelAliases:
        # Optimistic: the write succeeds only if the document is still the one read (ETag), else read again.
        key = self._key(name, ALIASES_FILE)
        for _ in range(5):
            found = self._read(key)
            current = parse_aliases(found[0], self._uri(key)) if found is not None else self.aliases(name)
            updated = change(current)
            condition = {"IfMatch": found[1]} if found is not None else {"IfNoneMatch": "*"}
            if self._put(key, updated.model_dump_json(indent=2).encode(), **condition):
                return updated
        raise ModelLoadError(f"{self._uri(key)}: changed by someone else five times in a row; try again")

    def publish(
        self, source: Path, *, version: str | None = None, progress: ProgressCallback | None = None
    ) -> ModelManifest:
        manifest = read_manifest(source)
        verify_files(source, manifest)  # before a byte is uploaded
        name = manifest.name
        with self._lease(name):
            target, present = publication(manifest, self.versions(name), lambda v: self.manifest(name, v), version)
            if present and target.version in self._published(name):
                return target
            for entry in manifest.files:
                key = self._key(name, target.version, entry.path)
                with self._s3(key), (source / entry.path).open("rb") as stream:
                    self.client.upload_fileobj(
                        stream,
                        self.bucket,
                        key,
                        ExtraArgs={"Metadata": {"sha256": entry.sha256}},
                        Callback=_progress(progress, entry),
                    )
            manifest_key = self._key(name, target.version, MANIFEST_FILE)
            if not self._put(manifest_key, target.model_dump_json(indent=2).encode(), IfNoneMatch="*"):
                raise InvalidInput(
                    f"{self._uri(manifest_key)} appeared while this publish ran; versions are immutable: "
                    "publish again to make the next version",
                    param="version",
                )
        return target

    # Helpers ------------------------------------------------------------------------------------------

    def _key(self, name: str, *parts: str) -> str:
        return self.prefix + "/".join((name, *parts))

    def _uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _listed(self, prefix: str) -> dict[str, list[str]]:
        """``{name: versions}`` of the versions under ``prefix`` whose manifest exists."""
        found: dict[str, list[str]] = {}
        with self._s3(self._uri(prefix)):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for listed in page.get("Contents", ()):
                    parts = str(listed["Key"])[len(self.prefix) :].split("/")
                    if len(parts) == 3 and parts[2] == MANIFEST_FILE and parts[1].isdigit():
                        found.setdefault(parts[0], []).append(parts[1])
        return {name: sorted(versions, key=int) for name, versions in found.items()}

    def _published(self, name: str) -> list[str]:
        return self._listed(self._key(name, "")).get(name, [])

    def _seed_for(self, name: str) -> LocalModelStore | None:
        """The seed, if it serves ``name``: it holds versions of it and the bucket holds none."""
        if self.seed is None or not self.seed.versions(name) or self._published(name):
            return None
        return self.seed

    def _seed_copy(self, manifest: ModelManifest) -> ModelArtifact | None:
        if self.seed is None:
            return None
        try:
            if self.seed.manifest(manifest.name, manifest.version) != manifest:
                return None
            return dataclasses.replace(self.seed.fetch(manifest.name, manifest.version), unsealer=self.unsealer)
        except AimassError:  # not in the seed, or broken there: the bucket's copy serves
            return None

    def _not_found(self, name: str, version: str) -> NotFound:
        listed = ", ".join(self.versions(name)) or "none"
        return NotFound(
            f"model '{name}' version '{version}' is not in the store at {self.location}; published versions: {listed}",
            param="version",
        )

    def _parse_manifest(self, raw: bytes, name: str, version: str) -> ModelManifest:
        where = self._uri(self._key(name, version, MANIFEST_FILE))
        try:
            manifest = ModelManifest.model_validate_json(raw)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors())
            raise ModelLoadError(f"{where}: invalid manifest: {problems}", public=INVALID_MANIFEST) from None
        if (manifest.name, manifest.version) != (name, version):
            raise ModelLoadError(
                f"{where}: describes '{manifest.name}' version {manifest.version}, but lies at '{name}/{version}'",
                public=MISPLACED_MANIFEST,
            )
        return manifest

    def _download(
        self, key: str, entry: FileEntry, stream: IO[bytes] | None, progress: ProgressCallback | None
    ) -> None:
        """Stream one object into ``stream`` (or nowhere), checking its size and sha256 against ``entry``."""
        sink = _HashingSink(stream)
        with self._s3(key):
            self.client.download_fileobj(self.bucket, key, sink, Callback=_progress(progress, entry))
        if sink.size != entry.size:
            raise ModelLoadError(
                f"{self._uri(key)}: size {sink.size} does not match the manifest's {entry.size}",
                public=integrity_failed(entry.path),
            )
        actual = sink.digest.hexdigest()
        if actual != entry.sha256:
            raise ModelLoadError(
                f"{self._uri(key)}: sha256 {actual[:12]}… does not match the manifest's {entry.sha256[:12]}…",
                public=integrity_failed(entry.path),
            )

    def _get(self, key: str) -> bytes | None:
        found = self._read(key)
        return found[0] if found is not None else None

    def _read(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag; None when there is no such object."""
        try:
            with self._s3(key):
                response = self._call(self.client.get_object, Bucket=self.bucket, Key=key)
                return response["Body"].read(), str(response["ETag"])
        except _Missing:
            return None

    def _put(self, key: str, body: bytes, **conditions: str) -> bool:
        """Write ``body``; False when a condition (IfMatch, IfNoneMatch) did not hold."""
        try:
            with self._s3(key):
                self._call(
                    self.client.put_object,
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentType="application/json",
                    **conditions,
                )
        except _Conflict:
            return False
        return True

    def _call(self, method: Callable[..., Any], **params: Any) -> Any:
        try:
            return method(**params)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "404"}:
                raise _Missing from None
            if code in _PRECONDITION:
                raise _Conflict from None
            raise

    @contextlib.contextmanager
    def _s3(self, what: str) -> Iterator[None]:
        """botocore's errors as AimassErrors that name the object and what S3 said."""
        uri = what if what.startswith("s3://") else self._uri(what)
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code == "NoSuchBucket":
                raise NotFound(f"S3 bucket '{self.bucket}' does not exist", param="bucket") from None
            if code in {"NoSuchKey", "404"}:
                raise ModelLoadError(f"{uri}: not found in the bucket", public=UNREADABLE) from None
            raise ModelLoadError(
                f"{uri}: S3 refused the request: {code} {error.get('Message', '')}".rstrip(), public=UNREADABLE
            ) from None
        except BotoCoreError as exc:
            raise ModelLoadError(f"{uri}: {exc}", public=UNREADABLE) from None

    @contextlib.contextmanager
    def _lease(self, name: str) -> Iterator[None]:
        key = self._key(name, LEASE_FILE)
        holder = {"holder": f"{socket.gethostname()}:{os.getpid()}", "since": now()}
        if not self._put(key, json.dumps(holder).encode(), IfNoneMatch="*"):
            raw = self._get(key)
            held = json.loads(raw) if raw else {}
            raise InvalidInput(
                f"model '{name}' is being published by {held.get('holder', '?')} since {held.get('since', '?')}; "
                f"wait for it, or if that publish was killed, delete {self._uri(key)} and publish again",
                param="name",
            )
        try:
            yield
        finally:
            with self._s3(key):
                self.client.delete_object(Bucket=self.bucket, Key=key)


class _Missing(Exception):
    """The object does not exist."""


class _Conflict(Exception):
    """A conditional write's condition did not hold."""


def _progress(progress: ProgressCallback | None, entry: FileEntry) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda amount: progress(entry.path, amount, entry.size)
