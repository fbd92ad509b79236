"""Unsealing (the serving side): a version's data key unwrapped once and kept in memory, each file decrypted
in memory as the store reads it, and checked against the plaintext digest its sealing recorded."""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag

from aimass.errors import ModelLoadError
from aimass.store.manifest import EncryptionSpec, FileEntry, ModelManifest
from aimass.store.sealing.cipher import KEY_BYTES, NONCE_BYTES, associated_data, decrypt
from aimass.store.sealing.keys import KeyProvider, KmsKeyProvider, LocalKeyProvider, kms_client

if TYPE_CHECKING:
    from aimass.settings import Settings

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
            plain = decrypt(key, nonce, sealed, associated_data(manifest.name, entry.path))
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
