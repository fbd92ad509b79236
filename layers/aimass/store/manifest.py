"""The model manifest: one validated document per model version.

Every built model directory holds ``manifest.json`` beside its files. The build writes it; the server reads
it, checks every file's size and sha256 before a byte reaches ONNX Runtime, and refuses the model with a
message that names the file otherwise.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from aimass.errors import ModelLoadError
from aimass.schema import Schema
from aimass.store.layout import MANIFEST_FILE as MANIFEST_FILE

# The V2 protocol's tensor datatypes. BYTES carries strings and encoded blobs.
Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# What a client is told about a version whose manifest or files are wrong (``ModelLoadError.public``): the
# version's own terms, never the store's paths or the digests.
INVALID_MANIFEST = "its manifest is invalid"
MISPLACED_MANIFEST = "its manifest describes another version"


def integrity_failed(path: str) -> str:
    return f"file {path} failed its integrity check"


class _Strict(Schema):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    """A named tensor; ``-1`` in ``shape`` is a dimension of any size.

    An ``optional`` input may be left out of a request (as in Triton): a runtime that serves alternative
    forms of one input (encoded images or decoded pixels) declares each as optional and checks that one came.
    """

    name: str = Field(min_length=1)
    datatype: Datatype
    shape: tuple[int, ...]
    optional: bool = False

    @field_validator("shape")
    @classmethod
    def _dims(cls, shape: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < -1 or d == 0 for d in shape):
            raise ValueError("dimensions must be positive or -1 (any size)")
        return shape


class FileEntry(_Strict):
    """A file of the model, relative to the model version's directory."""

    path: str = Field(min_length=1)
    sha256: str
    size: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _relative(cls, path: str) -> str:
        if path.startswith("/") or ".." in Path(path).parts:
            raise ValueError("file paths must be relative and stay inside the model directory")
        return path

    @field_validator("sha256")
    @classmethod
    def _hex(cls, digest: str) -> str:
        if not _SHA256.match(digest):
            raise ValueError("sha256 must be 64 lowercase hex digits")
        return digest


# The engines a model version may be computed by; a domain package maps each to its runtime class
# (aimass.serving.domains).
EngineFormat = Literal["onnx", "pocketsphinx"]


class EngineSpec(_Strict):
    """What computes the model, and its own tensors (which may differ from the served ones: tokens vs. text).

    ``format`` names the engine: ``onnx`` (ONNX Runtime: ``file`` is the graph) or ``pocketsphinx`` (CMU
    PocketSphinx: ``file`` is the language model). ``parts`` are the other files the engine reads, by the
    engine's own name for each (PocketSphinx's configuration keys: ``mdef``, ``mean``, ``dict``, ...).
    """

    format: EngineFormat = "onnx"
    file: str
    parts: dict[str, str] = Field(default_factory=dict)
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


class SealedFile(_Strict):
    """How one file of an encrypted version was sealed: its nonce, and the plaintext's own digest and size."""

    path: str = Field(min_length=1)
    nonce: str = Field(description="base64 of the 12-byte AES-GCM nonce")
    plain_sha256: str
    plain_size: int = Field(ge=0)


class EncryptionSpec(_Strict):
    """Envelope encryption of a version: every file sealed under one data key, the data key wrapped.

    The listed ``files`` digests are the ciphertexts' (what the store holds and transfers); ``sealed`` gives
    each plaintext's digest, checked after decryption in memory.
    """

    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    key_provider: Literal["local", "kms"]
    key_id: str = Field(min_length=1, description="the KMS key's id or ARN, or the local master key's fingerprint")
    wrapped_key: str = Field(min_length=1, description="base64 of the wrapped data key")
    sealed: tuple[SealedFile, ...]


class ModelManifest(_Strict):
    """What a model version is, how to serve it, and how good it is."""

    schema_version: Literal[1] = 1
    name: str
    version: str
    domain: str = Field(description="the domain runtime that serves it: text, vision, speech, rl, ...")
    task: str = Field(description="what it does, e.g. 'embedding' or 'classification'")
    description: str = ""
    source: str = ""
    license: str = ""
    files: tuple[FileEntry, ...]
    engine: EngineSpec
    inputs: tuple[TensorSpec, ...] = Field(description="the served V2 input tensors")
    outputs: tuple[TensorSpec, ...] = Field(description="the served V2 output tensors")
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    labels: tuple[str, ...] | None = None
    quality: dict[str, Any] = Field(default_factory=dict)
    created_at: str = ""
    validation: str | None = Field(
        default=None,
        description="a listed file of validation samples (inputs, expected outputs, tolerances) run before a swap",
    )
    derived_from: str | None = Field(default=None, description="the version this one was made from (quantization)")
    compression: dict[str, Any] | None = Field(default=None, description="the quantization report, if quantized")
    encryption: EncryptionSpec | None = None
    tenant: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$",
        description="the only tenant whose keys may call it (an imported model scoped to its importer); None: all",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("name must be 1-64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
        return name

    @field_validator("version")
    @classmethod
    def _version(cls, version: str) -> str:
        if not version.isdigit() or version.startswith("0"):
            raise ValueError("version must be a positive integer written as a string, e.g. '1'")
        return version

    @model_validator(mode="after")
    def _files_listed(self) -> ModelManifest:
        listed = {f.path for f in self.files}
        if self.engine.file not in listed:
            raise ValueError(f"engine file '{self.engine.file}' is not listed in files")
        unlisted = sorted(f"{role}={path}" for role, path in self.engine.parts.items() if path not in listed)
        if unlisted:
            raise ValueError(f"engine parts {unlisted} are not listed in files")
        if self.validation is not None and self.validation not in listed:
            raise ValueError(f"validation file '{self.validation}' is not listed in files")
        if self.encryption is not None and {s.path for s in self.encryption.sealed} != listed:
            raise ValueError("encryption.sealed must describe every listed file, and only those")
        return self

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise ModelLoadError(
            f"model '{self.name}' version {self.version}: no file '{path}' in its manifest",
            public=f"file {path} is not listed in its manifest",
        )


def sha256_file(path: Path) -> str:
    # Large blocks: each read and update releases the GIL once, and a model loading on a thread beside
    # other Python work waits for the GIL again after every release.
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(64 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(root: Path, relative: str) -> FileEntry:
    """Describe a file of a model being built (used by the model builds)."""
    path = root / relative
    return FileEntry(path=relative, sha256=sha256_file(path), size=path.stat().st_size)


def read_manifest(directory: Path) -> ModelManifest:
    path = directory / MANIFEST_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: manifest not found", public="its manifest is missing") from None
    try:
        return ModelManifest.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise ModelLoadError(f"{path}: invalid manifest: {problems}", public=INVALID_MANIFEST) from None


def write_manifest(directory: Path, manifest: ModelManifest) -> Path:
    path = directory / MANIFEST_FILE
    path.write_text(manifest.model_dump_json(indent=2) + "\n")
    return path


def check_sizes(directory: Path, manifest: ModelManifest) -> None:
    """Every listed file is present with its listed size: the cheap half of verification."""
    for entry in manifest.files:
        path = directory / entry.path
        if not path.is_file():
            raise ModelLoadError(
                f"{path}: file listed in the manifest is missing", public=f"file {entry.path} is missing"
            )
        size = path.stat().st_size
        if size != entry.size:
            raise ModelLoadError(
                f"{path}: size {size} does not match the manifest's {entry.size}", public=integrity_failed(entry.path)
            )


def check_digest(path: Path, entry: FileEntry, actual: str) -> None:
    if actual != entry.sha256:
        raise ModelLoadError(
            f"{path}: sha256 {actual[:12]}… does not match the manifest's {entry.sha256[:12]}…",
            public=integrity_failed(entry.path),
        )


def verify_files(directory: Path, manifest: ModelManifest) -> None:
    """Check every listed file's size and sha256; raise ModelLoadError naming the first bad file."""
    check_sizes(directory, manifest)
    for entry in manifest.files:
        path = directory / entry.path
        check_digest(path, entry, sha256_file(path))
