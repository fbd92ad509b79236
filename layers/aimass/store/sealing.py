"""Envelope encryption of model versions: each version's files sealed under its own data key, the key wrapped.

``seal_version`` turns a built version folder into a sealed copy: a fresh random 256-bit data key, every file
encrypted with AES-256-GCM under its own random 12-byte nonce, and the data key wrapped by a ``KeyProvider``
(a local master key file, or a KMS key). The store then holds and transfers only ciphertexts, and
``EnvelopeUnsealer``, the store's ``Unsealer``, unwraps a version's data key once, keeps it in memory, and decrypts
each file as the store reads it: a plaintext model is never written anywhere.

A ciphertext is bound to its model's name and its file path by AES-GCM's associated data, and to its version
by the data key, which every sealing draws afresh: a file moved to another path, or copied in from another
version, fails authentication. The version number itself is left out of the associated data because
publishing gives the sealed folder its number after sealing.

Refusals (``ModelLoadError``) name one of three reasons: **tampered** (a ciphertext fails authentication, or
decrypts to other bytes than the manifest lists), **wrong key** (the key at hand is not the one the version
was sealed under, or does not unwrap its data key), **no key** (this process has no provider of the kind the
version needs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import shutil
import stat
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from aimass import aws
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

if TYPE_CHECKING:
    from aimass.settings import Settings

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16

ProviderName = Literal["local", "kms"]


class KeyProvider(Protocol):
    """Wraps and unwraps data keys under a key it holds: the adapter seam of envelope encryption.

    ``name`` is what a sealed manifest records as its ``key_provider``, ``key_id`` which key wraps (a master
    key's fingerprint, a KMS key's ARN). ``unwrap`` is told the ``key_id`` the version was sealed under.
    Failures raise ``ModelLoadError`` with the reason; the caller adds which model it was.
    """

    @property
    def name(self) -> ProviderName: ...

    @property
    def key_id(self) -> str: ...

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, key_id: str) -> bytes: ...


class LocalKeyProvider:
    """A 32-byte master key in an owner-only file; data keys are wrapped with AES key wrap (RFC 3394).

    ``key_id`` is the master key's fingerprint, the first 16 hex digits of its sha256 (what ``sha256sum``
    prints for the file), so a version sealed under another master key is refused as such, not as corrupt.
    """

    name: Literal["local"] = "local"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key = _read_master_key(path)
        self.key_id = hashlib.sha256(self._key).hexdigest()[:16]

    @classmethod
    def create_or_open(cls, path: Path) -> LocalKeyProvider:
        """The master key at ``path``, first created (owner-only, in an owner-only folder) if there is none."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            # Created exclusively and with its mode: never readable by others, not even for an instant, and
            # never replacing a key that exists (and whose sealed versions would become unreadable).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls(path)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(os.urandom(KEY_BYTES))
                stream.flush()
                os.fsync(stream.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return cls(path)

    def wrap(self, data_key: bytes) -> bytes:
        return aes_key_wrap(self._key, data_key)

    def unwrap(self, wrapped: bytes, key_id: str) -> bytes:
        if key_id != self.key_id:
            raise ModelLoadError(
                f"wrong key: sealed under local master key {key_id}, but {self.path} is master key {self.key_id}; "
                "point AIMASS_MASTER_KEY_FILE at the key it was sealed with"
            )
        try:
            return aes_key_unwrap(self._key, wrapped)
        except InvalidUnwrap:
            raise ModelLoadError(
                f"wrong key: local master key {self.key_id} ({self.path}) does not unwrap the data key "
                "(the manifest's wrapped_key was altered)"
            ) from None


def _read_master_key(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: no master key file there; `aimass models encrypt` creates one") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot open the master key file: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as stream:
        # Checked on the open file itself, so the file checked is the file read.
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ModelLoadError(f"{path}: the master key must be a regular file")
        if (mode := stat.S_IMODE(info.st_mode)) & 0o077:
            raise ModelLoadError(
                f"{path}: master key file has mode {mode:04o}, open to group or others; "
                f"make it owner-only (chmod 600 {path})"
            )
        key = stream.read(KEY_BYTES + 1)
    if len(key) != KEY_BYTES:
        raise ModelLoadError(f"{path}: a master key is {KEY_BYTES} bytes, this file holds {info.st_size}")
    return key


class KmsKeyProvider:
    """Data keys wrapped by a KMS key (``Encrypt``/``Decrypt``); the KMS key never leaves KMS.

    ``client`` is a boto3 KMS client. ``key_id`` is the configured id, ARN or alias until the first ``wrap``,
    then the key's ARN as KMS reports it: a sealed manifest names the key itself, not an alias that may later
    point elsewhere. AWS errors become ``ModelLoadError`` naming the key and the KMS error code.
    """

    name: Literal["kms"] = "kms"

    def __init__(self, client: Any, key_id: str) -> None:
        self._client = client
        self.key_id = key_id

    def wrap(self, data_key: bytes) -> bytes:
        response = self._call("wrap", self.key_id, self._client.encrypt, KeyId=self.key_id, Plaintext=data_key)
        self.key_id = str(response["KeyId"])
        return bytes(response["CiphertextBlob"])

    def unwrap(self, wrapped: bytes, key_id: str) -> bytes:
        # KeyId pins the key: KMS refuses a blob that another key wrapped instead of trying that one.
        response = self._call("unwrap", key_id, self._client.decrypt, CiphertextBlob=wrapped, KeyId=key_id)
        return bytes(response["Plaintext"])

    @staticmethod
    def _call(verb: str, key_id: str, operation: Callable[..., Any], **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response: dict[str, Any] = operation(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "unknown"), error.get("Message", "")
            raise ModelLoadError(f"KMS key '{key_id}' refused to {verb} the data key: {code}: {message}") from None
        except BotoCoreError as exc:
            raise ModelLoadError(
                f"KMS key '{key_id}': KMS did not answer a request to {verb} the data key: {type(exc).__name__}: {exc}"
            ) from None
        return response


def kms_client(endpoint_url: str | None) -> Any:
    """A KMS client (``aimass.aws``: a model load, and so a request, may wait on it)."""
    return aws.client("kms", endpoint_url)


def associated_data(name: str, path: str) -> bytes:
    """What a ciphertext is bound to besides its data key: its model's name and its path in the version."""
    # JSON keeps the parts apart however they are spelled.
    return json.dumps(["aimass-sealed-v1", name, path]).encode()


# The streaming Cipher API rather than AESGCM's one-shot calls, which refuse inputs over 2 GiB; the layout
# (ciphertext, then the 16-byte tag) is the same.
def _encrypt(key: bytes, nonce: bytes, plain: bytes, aad: bytes) -> tuple[bytes, bytes]:
    encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    body = encryptor.update(plain)
    encryptor.finalize()
    return body, encryptor.tag


def _decrypt(key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    if len(sealed) < TAG_BYTES:
        raise InvalidTag
    view = memoryview(sealed)
    decryptor = Cipher(algorithms.AES(key), modes.GCM(nonce, bytes(view[-TAG_BYTES:]))).decryptor()
    decryptor.authenticate_additional_data(aad)
    plain = decryptor.update(view[:-TAG_BYTES])
    decryptor.finalize()  # raises InvalidTag: no byte is returned unless the whole file is authentic
    return plain


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
    body, tag = _encrypt(data_key, nonce, plain, associated_data(name, entry.path))
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


# (provider name, key id the version was sealed under) -> a provider of that name, or None where there is none.
ProviderLookup = Callable[[str, str], KeyProvider | None]


class EnvelopeUnsealer:
    """The store's ``Unsealer``: decrypts sealed files in memory, unwrapping each version's data key once.

    ``providers`` maps provider names ("local", "kms") to providers, or is a ``ProviderLookup`` called when a
    version first needs one (so a process builds a KMS client only for a KMS-sealed version; the lookup may
    raise ``ModelLoadError`` to say why it has none). Unwrapped data keys are kept in this object's memory
    for the life of the process, never written.
    """

    def __init__(self, providers: Mapping[str, KeyProvider] | ProviderLookup) -> None:
        if isinstance(providers, Mapping):
            table = dict(providers)
            self._lookup: ProviderLookup = lambda name, _key_id: table.get(name)
        else:
            self._lookup = providers
        self._keys: dict[tuple[str, ...], bytes] = {}
        # One lock for every version: an unwrap is rare (once per version), and loads on several threads must
        # not each call KMS for the same key.
        self._lock = threading.Lock()

    def open(self, manifest: ModelManifest, entry: FileEntry, sealed: bytes) -> bytes:
        where = f"model '{manifest.name}' version {manifest.version}"
        spec = manifest.encryption
        if spec is None:
            raise ModelLoadError(f"{where} is not encrypted; there is nothing to unseal")
        record = next((s for s in spec.sealed if s.path == entry.path), None)
        if record is None:
            raise ModelLoadError(f"{where}: file '{entry.path}' has no sealing record in the manifest")
        key = self._data_key(where, manifest, spec)
        try:
            nonce = base64.b64decode(record.nonce, validate=True)
        except binascii.Error:
            nonce = b""
        if len(nonce) != NONCE_BYTES:
            raise ModelLoadError(f"{where}: file '{entry.path}' is tampered: its nonce is not 12 bytes in base64")
        try:
            plain = _decrypt(key, nonce, sealed, associated_data(manifest.name, entry.path))
        except InvalidTag:
            raise ModelLoadError(
                f"{where}: file '{entry.path}' is tampered: its ciphertext fails AES-GCM authentication "
                "(altered, or moved from another file or version)"
            ) from None
        digest = hashlib.sha256(plain).hexdigest()
        if len(plain) != record.plain_size or digest != record.plain_sha256:
            raise ModelLoadError(
                f"{where}: file '{entry.path}' is tampered: it decrypts to {len(plain)} bytes with sha256 "
                f"{digest[:12]}…, the manifest lists {record.plain_size} bytes with sha256 {record.plain_sha256[:12]}…"
            )
        return plain

    def _data_key(self, where: str, manifest: ModelManifest, spec: EncryptionSpec) -> bytes:
        cache_key = (manifest.name, manifest.version, spec.key_provider, spec.key_id, spec.wrapped_key)
        with self._lock:
            key = self._keys.get(cache_key)
            if key is None:
                key = self._unwrap(where, spec)
                self._keys[cache_key] = key
            return key

    def _unwrap(self, where: str, spec: EncryptionSpec) -> bytes:
        try:
            provider = self._lookup(spec.key_provider, spec.key_id)
            if provider is None:
                raise ModelLoadError(
                    f"no key: it is sealed under {spec.key_provider} key {spec.key_id}, and this process has no "
                    f"{spec.key_provider} key provider configured"
                )
            key = provider.unwrap(base64.b64decode(spec.wrapped_key, validate=True), spec.key_id)
        except binascii.Error:
            raise ModelLoadError(f"{where}: tampered: the manifest's wrapped_key is not base64") from None
        except ModelLoadError as exc:
            raise ModelLoadError(f"{where}: {exc.message}") from None
        if len(key) != KEY_BYTES:
            raise ModelLoadError(f"{where}: wrong key: the unwrapped data key is {len(key)} bytes, not {KEY_BYTES}")
        return key


class _SettingsProviders:
    """The ``ProviderLookup`` of a serving process: each provider built from its settings when first needed.

    Called under the unsealer's lock, so each provider is built once.
    """

    def __init__(self, settings: Settings, kms: Any | None) -> None:
        self._settings = settings
        self._kms = kms
        self._local: LocalKeyProvider | None = None

    def __call__(self, name: str, key_id: str) -> KeyProvider | None:
        if name == "local":
            return self._local_provider()
        if name == "kms":
            if self._kms is None:
                self._kms = kms_client(self._settings.aws_endpoint_url)
            # Unwrapping uses the key the manifest names; the configured one matters only for sealing.
            return KmsKeyProvider(self._kms, self._settings.kms_key_id or key_id)
        return None

    def _local_provider(self) -> LocalKeyProvider:
        if self._local is None:
            path = self._settings.master_key_file
            if not path.exists():  # serving never creates a key: a new one could not unwrap anything
                raise ModelLoadError(f"no key: there is no local master key file at {path} (AIMASS_MASTER_KEY_FILE)")
            self._local = LocalKeyProvider(path)
        return self._local


def unsealer_from_settings(settings: Settings, *, kms: Any | None = None) -> EnvelopeUnsealer:
    """The serving process's unsealer: the local master key at ``settings.master_key_file`` and KMS (over
    ``kms``, a boto3 KMS client, or one built for ``settings.aws_endpoint_url``), each read or built only when
    a version sealed under it is first loaded, so a process with no sealed models touches neither."""
    return EnvelopeUnsealer(_SettingsProviders(settings, kms))
