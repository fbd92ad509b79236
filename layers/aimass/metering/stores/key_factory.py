"""Which key store a process uses, from the settings (``metering``): its composition root.

``sqlite``: ``<state_dir>/metering.db``. ``dynamodb``: the table ``keys_table``, through a client made by
``aimass.aws`` (boto3 imported only then). ``off``: no key store. Apart from the usage stores' factory, so the
authorizer image, which checks keys and records nothing, carries the key stores alone.
"""

from __future__ import annotations

from aimass import aws
from aimass.errors import InvalidInput
from aimass.metering.keys import KeyStore
from aimass.metering.stores.base import MeteringUnavailable
from aimass.metering.stores.keys_dynamodb import DynamoKeyStore
from aimass.metering.stores.keys_sqlite import SqliteKeyStore
from aimass.metering.stores.sqlite import METERING_DB
from aimass.settings import Settings


def open_key_store(settings: Settings) -> KeyStore:
    """SQLite at ``<state_dir>/metering.db``, or the DynamoDB table ``keys_table`` (boto3 imported only then)."""
    if settings.metering == "sqlite":
        return SqliteKeyStore(settings.state_dir / METERING_DB)
    if settings.metering == "dynamodb":
        from botocore.exceptions import BotoCoreError

        try:
            client = aws.client("dynamodb", settings.aws_endpoint_url)
        except BotoCoreError as exc:  # e.g. no region configured
            raise MeteringUnavailable(f"DynamoDB table '{settings.keys_table}': {type(exc).__name__}: {exc}") from None
        return DynamoKeyStore(client, settings.keys_table)
    raise InvalidInput(
        "metering is off (AIMASS_METERING=off), so there is no key store; set AIMASS_METERING to sqlite or dynamodb",
        param="metering",
    )
