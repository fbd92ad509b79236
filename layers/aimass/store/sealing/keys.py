"""Key providers: what wraps and unwraps a version's data key (a local master key file, or a KMS key).

A local master key lives in an owner-only file, created exclusively with its mode and checked on the open file
when read. A KMS key never leaves KMS; its client comes from ``aimass.aws`` (``kms_client``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from aimass import aws
from aimass.errors import ModelLoadError
from aimass.store.sealing.cipher import KEY_BYTES

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
