"""The envelope key: the KMS key that wraps the data keys of encrypted model versions."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class ModelKey(Construct):
    """Symmetric, rotated KMS key for model envelope encryption (``aimass.store.sealing``).

    Each encrypted version's files are sealed with AES-256-GCM under a random data key, and the data key is
    wrapped by this key (``kms:Encrypt``); the version's manifest records the key, and a function unwraps
    the data key with ``kms:Decrypt`` when it loads the version.

    Not the model bucket's key: that one is used by S3 on a caller's behalf to protect objects at rest
    (grants carry a ``kms:ViaService`` condition), while this one is called directly by the functions and
    the publisher, so its grants cannot be limited to S3 and are kept to the KMS actions each caller needs.
    """

    def __init__(self, scope: Construct, construct_id: str, *, alias: str) -> None:
        super().__init__(scope, construct_id)
        # Retained like the bucket key and the bucket itself: every encrypted version ever published (and
        # kept by the bucket's versioning) is readable only while this key exists.
        self.key = kms.Key(
            self,
            "Key",
            alias=alias,
            description="Wraps the data keys of encrypted AI Mass model versions (envelope encryption)",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def grant_unseal(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` unwrap data keys (``kms:Decrypt``) to load encrypted versions."""
        return self.key.grant_decrypt(grantee)

    def grant_seal(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` wrap new data keys and unwrap existing ones (re-sealing, checking a publish).

        Named actions rather than ``grant_encrypt``'s ``kms:ReEncrypt*`` and ``kms:GenerateDataKey*``
        wildcards: the CLI wraps a data key it generated (``kms:Encrypt``) or has KMS generate one.
        """
        return self.key.grant(grantee, "kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt")
