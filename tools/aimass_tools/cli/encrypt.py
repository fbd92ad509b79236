"""``aimass models encrypt SOURCE_DIR TARGET_DIR``: seal a built model version (envelope encryption).

The sealed copy holds only ciphertexts, and its manifest the data key wrapped by the local master key
(``AIMASS_MASTER_KEY_FILE``, created owner-only on first use) or by a KMS key (``--kms-key-id`` or
``AIMASS_KMS_KEY_ID``). ``aimass models publish TARGET_DIR`` then gives it a version in the store.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aimass.errors import AimassError
from aimass.settings import Settings
from aimass.store.sealing.keys import KeyProvider, KmsKeyProvider, LocalKeyProvider, kms_client
from aimass.store.sealing.seal import seal_version
from aimass_tools.cli.common import console
from aimass_tools.cli.models import app

errors = Console(stderr=True)


@app.command("encrypt")
def encrypt(
    source: Annotated[
        Path, typer.Argument(metavar="SOURCE_DIR", help="a built model version folder: manifest.json and its files")
    ],
    target: Annotated[
        Path, typer.Argument(metavar="TARGET_DIR", help="the new folder for the sealed copy (must not hold anything)")
    ],
    kms_key_id: Annotated[
        str | None,
        typer.Option(
            "--kms-key-id",
            envvar="AIMASS_KMS_KEY_ID",
            help="wrap the data key with this KMS key (id, ARN or alias); without it, the local master key",
        ),
    ] = None,
) -> None:
    """Seal a model version into TARGET_DIR: every file encrypted under a new data key, which is wrapped."""
    settings = Settings()
    try:
        provider = _provider(settings, kms_key_id)
        started = time.perf_counter()
        manifest = seal_version(source, target, provider)
        elapsed = time.perf_counter() - started
    except AimassError as exc:
        errors.print(exc.message, style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    assert manifest.encryption is not None
    size = sum(entry.size for entry in manifest.files) / 1e6
    console.print(
        f"sealed {manifest.name} v{manifest.version}: {len(manifest.files)} files, {size:.1f} MB in {elapsed:.2f} s, "
        f"data key wrapped by {manifest.encryption.key_provider} key {manifest.encryption.key_id}",
        markup=False,
        soft_wrap=True,
    )
    console.print(f"wrote {target}; publish it with: aimass models publish {target}", markup=False, soft_wrap=True)


def _provider(settings: Settings, kms_key_id: str | None) -> KeyProvider:
    if kms_key_id:
        return KmsKeyProvider(kms_client(settings.aws_endpoint_url), kms_key_id)
    path = settings.master_key_file
    created = not path.exists()
    provider = LocalKeyProvider.create_or_open(path)
    if created:
        console.print(
            f"created master key {path} (owner-only, fingerprint {provider.key_id}); keep it: "
            "versions sealed under it cannot be read without it",
            markup=False,
            soft_wrap=True,
        )
    return provider
