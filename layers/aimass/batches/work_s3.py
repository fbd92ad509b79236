"""The shards' intermediate outputs in S3, under ``<prefix><key>`` (``batches/`` in the files bucket on AWS).

Each output is one PUT, which S3 makes visible whole or not at all: a worker killed mid-write leaves no half
chunk, and one that reruns its shard writes the same keys again. ``keys`` lists in pages and ``delete``
removes in S3's batches of 1,000, so a batch of any size is listed and cleaned up.

The client is any boto3 S3 client (``aimass.batches.aws_factory`` makes it with ``aimass.aws``). A client error
other than a missing object is a ``ServiceUnavailable`` for the caller; its detail goes to the log.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from aimass.errors import ServiceUnavailable

log = logging.getLogger("aimass.batches")

DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes
_MISSING = ("NoSuchKey", "404", "NotFound")


class S3WorkStore:
    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix if prefix == "" or prefix.endswith("/") else prefix + "/"

    def put(self, key: str, data: bytes) -> None:
        with _unavailable("write", self.bucket, key):
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with _unavailable("read", self.bucket, key):
            try:
                data: bytes = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in _MISSING:
                    return None
                raise
        return data

    def keys(self, prefix: str) -> list[str]:
        return sorted(key[len(self.prefix) :] for key in self._listed(prefix))

    def delete(self, prefix: str) -> None:
        listed = list(self._listed(prefix))
        for start in range(0, len(listed), DELETE_BATCH):
            batch = [{"Key": key} for key in listed[start : start + DELETE_BATCH]]
            with _unavailable("delete", self.bucket, prefix):
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            # DeleteObjects answers 200 even when some keys were not deleted: those are its Errors.
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                log.error(
                    "work store delete under s3://%s/%s%s left %d keys: %s %s: %s",
                    self.bucket, self.prefix, prefix, len(errors), first.get("Key"), first.get("Code"),
                    first.get("Message"),
                )  # fmt: skip
                raise ServiceUnavailable("the batch work store cannot be reached now; retry shortly")

    def _listed(self, prefix: str) -> Iterator[str]:
        """Every full key under ``prefix``, page by page."""
        with _unavailable("list", self.bucket, prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    yield str(item["Key"])


@contextlib.contextmanager
def _unavailable(action: str, bucket: str, key: str) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        log.error("work store %s of %s in bucket %s failed: %s", action, key, bucket, exc)
        raise ServiceUnavailable("the batch work store cannot be reached now; retry shortly") from None
