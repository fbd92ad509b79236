"""The jobs table: one item per batch (OpenAI's Batch API), in DynamoDB under its own KMS key."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from aimass.contract import JOBS_BATCH_INDEX, JOBS_TABLE
from infra.constructs.metering_tables import MeteringTables, grant_key_via_dynamodb, layout_table


class JobsTable(Construct):
    """An on-demand table of batches (``aimass.contract.JOBS_TABLE``), kept like the metering tables: point-in-time
    recovery, deletion protection, retained with the stack.

    Encrypted under the metering tables' key (``key``): a batch record is what a tenant ran and is billed for, the
    same kind of data as its usage records, and that key is usable only through DynamoDB, never by a bucket or a
    direct caller.
    """

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.key = key
        self.table = layout_table(self, "Table", JOBS_TABLE, key)

    def grant_read_write(self, role: iam.IRole) -> None:
        """Keep batches: create one (a conditional PutItem), read one (GetItem), list a tenant's (a Query of the
        table), find one by id (a Query of ``batch-index``), and move its status or count a shard (conditional
        UpdateItems). Nothing deletes a batch record."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"],
                resources=[self.table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"],
                resources=[MeteringTables.index_arn(self.table, JOBS_BATCH_INDEX)],
            )
        )
        grant_key_via_dynamodb(role, self.key)
