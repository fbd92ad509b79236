"""Sealing a model version (the operator's side): a fresh data key, each file encrypted, the key wrapped."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from pathlib import Path

from aimass.errors import ModelLoadError
from aimass.store.manifest import (
    EncryptionSpec,
    FileEntry,
    ModelManifest,
    SealedFile,
    check_digest,
    check_sizes,
    read_manifest,
    write_manifest,
)
from aimass.store.sealing.cipher import KEY_BYTES, NONCE_BYTES, associated_data, encrypt
from aimass.store.sealing.keys import KeyProvider


def seal_version(source: Path, target: Path, provider: KeyProvider) -> ModelManifest:
    """Seal the model version in ``source`` into the new folder ``target``; returns the sealed manifest.

    Every listed file is checked against its manifest entry on the very bytes that are sealed. The sealed
    manifest keeps everything but ``files`` (now the ciphertexts') and ``encryption``. The folder is written
    beside ``target`` and renamed into place, so a failure leaves no half-sealed version behind.
    """
    manifest = read_manifest(source)
    if manifest.encryption is not None:
        raise ModelLoadError(f"{source}: model '{manifest.name}' version {manifest.version} is already sealed")
    check_sizes(source, manifest)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ModelLoadError(f"{target}: already exists and is not empty; seal into a new folder")
    data_key = os.urandom(KEY_BYTES)  # in memory only; the manifest holds it wrapped
    wrapped = provider.wrap(data_key)  # first: a refused key leaves nothing written
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.sealing-{os.urandom(4).hex()}"
    staging.mkdir()
    try:
        pairs = [_seal_file(source, staging, entry, data_key, manifest.name) for entry in manifest.files]
        encryption = EncryptionSpec(
            key_provider=provider.name,
            key_id=provider.key_id,
            wrapped_key=base64.b64encode(wrapped).decode(),
            sealed=tuple(sealed for _, sealed in pairs),
        )
        files = tuple(entry for entry, _ in pairs)
        result = ModelManifest.model_validate(manifest.model_dump() | {"files": files, "encryption": encryption})
        write_manifest(staging, result)
        staging.replace(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def _seal_file(
    source: Path, staging: Path, entry: FileEntry, data_key: bytes, name: str
) -> tuple[FileEntry, SealedFile]:
    path = source / entry.path
    plain = path.read_bytes()
    check_digest(path, entry, hashlib.sha256(plain).hexdigest())
    nonce = os.urandom(NONCE_BYTES)
    body, tag = encrypt(data_key, nonce, plain, associated_data(name, entry.path))
    out = staging / entry.path
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as stream:
        stream.write(body)
        stream.write(tag)
    digest = hashlib.sha256(body)
    digest.update(tag)
    sealed = SealedFile(
        path=entry.path, nonce=base64.b64encode(nonce).decode(), plain_sha256=entry.sha256, plain_size=len(plain)
    )
    return FileEntry(path=entry.path, sha256=digest.hexdigest(), size=len(body) + len(tag)), sealed
