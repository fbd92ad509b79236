"""The metering tables: API keys, usage records and quota counters in DynamoDB, under their own KMS key."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from aimass.contract import (
    COUNTERS_TABLE,
    KEYS_TABLE,
    KEYS_TENANT_INDEX,
    USAGE_TABLE,
    USAGE_TENANT_AT_INDEX,
    Attribute,
    TableLayout,
)

# DynamoDB's attribute types by their code in the layouts (aimass.contract).
_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


class MeteringTables(Construct):
    """Three on-demand tables, each with point-in-time recovery, deletion protection and a retain policy.

    * ``keys``: one item per API key (``key_id``), the GSI ``tenant-index`` lists a tenant's keys;
    * ``usage``: one item per request (``request_id``, written once), the GSI ``tenant-at-index`` (``tenant``,
      ``at``) reads a tenant's usage over a time range;
    * ``counters``: a tenant's units per month (``subject``, ``period``), charged with conditional updates.

    They hold who may call and what they owe, so nothing here is ever deleted with the stack. Their key is not
    the model bucket's: that one is granted only through S3, this one only through DynamoDB, so each key's policy
    and CloudTrail record speak of one kind of data, and either can be disabled without touching the other.

    Their keys and indexes are the layouts the metering code is written against (``aimass.contract``).
    The ``grant_*`` methods name the DynamoDB actions of one use (``aimass.metering``'s calls, no more), on the
    table or the one index it queries; the first also lets the role use the key through DynamoDB.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "TableKey",
            description="Encrypts the AI Mass metering tables (API keys, usage records, quota counters) and jobs table",
            enable_key_rotation=True,
            # The tables are retained, and they are readable only while their key exists.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.keys = self._table("KeysTable", KEYS_TABLE)
        self.usage = self._table("UsageTable", USAGE_TABLE)
        self.counters = self._table("CountersTable", COUNTERS_TABLE)
        self._key_users: set[str] = set()

    def _table(self, construct_id: str, layout: TableLayout) -> dynamodb.Table:
        return layout_table(self, construct_id, layout, self.key)

    @staticmethod
    def index_arn(table: dynamodb.Table, index_name: str) -> str:
        return f"{table.table_arn}/index/{index_name}"

    def grant_key_check(self, role: iam.IRole) -> None:
        """Look up a presented key by id: what every request's authentication does."""
        self._grant(role, ["dynamodb:GetItem"], [self.keys.table_arn])

    def grant_key_admin(self, role: iam.IRole) -> None:
        """Create, list, revoke and rotate keys (``aimass.metering.key_admin``, the admin API and ``aimass keys``).

        Create is a conditional PutItem, revoke a conditional UpdateItem (then a GetItem when the condition
        fails), rotate both; a tenant's keys are a Query on ``tenant-index`` and every tenant's (a listing
        without a tenant) a Scan of the table.
        """
        self._grant(
            role,
            ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Scan"],
            [self.keys.table_arn],
        )
        self._grant(role, ["dynamodb:Query"], [self.index_arn(self.keys, KEYS_TENANT_INDEX)])

    def grant_usage_record(self, role: iam.IRole) -> None:
        """Write one usage record per request (a conditional PutItem: a retried request is recorded once)."""
        self._grant(role, ["dynamodb:PutItem"], [self.usage.table_arn])

    def grant_usage_read(self, role: iam.IRole, *, every_tenant: bool) -> None:
        """Read a tenant's usage over a time range (a Query on ``tenant-at-index``); with ``every_tenant``,
        every tenant's too (``GET /v1/usage?tenant=*`` scans the table)."""
        self._grant(role, ["dynamodb:Query"], [self.index_arn(self.usage, USAGE_TENANT_AT_INDEX)])
        if every_tenant:
            self._grant(role, ["dynamodb:Scan"], [self.usage.table_arn])

    def grant_quota(self, role: iam.IRole) -> None:
        """Charge a tenant's monthly units (the conditional update in a billed record's transaction) and read
        what is used (GetItem)."""
        self._grant(role, ["dynamodb:GetItem", "dynamodb:UpdateItem"], [self.counters.table_arn])

    def _grant(self, role: iam.IRole, actions: Sequence[str], resources: Sequence[str]) -> None:
        role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=list(resources)))
        if role.node.path in self._key_users:
            return
        self._key_users.add(role.node.path)
        grant_key_via_dynamodb(role, self.key)


def layout_table(scope: Construct, construct_id: str, layout: TableLayout, key: kms.IKey) -> dynamodb.Table:
    """An on-demand table with ``layout``'s keys and indexes, encrypted under ``key``, with point-in-time recovery
    and deletion protection, retained with the stack."""
    table = dynamodb.Table(
        scope,
        construct_id,
        partition_key=_attribute(layout.partition_key),
        sort_key=_sort_key(layout.sort_key),
        # Traffic follows paying requests, from zero: no capacity to plan or pay for while idle.
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        deletion_protection=True,
        removal_policy=RemovalPolicy.RETAIN,
    )
    for index in layout.indexes:
        table.add_global_secondary_index(
            index_name=index.name,
            partition_key=_attribute(index.partition_key),
            sort_key=_sort_key(index.sort_key),
            projection_type=dynamodb.ProjectionType.ALL,
        )
    return table


def grant_key_via_dynamodb(role: iam.IRole, key: kms.IKey) -> None:
    """Let ``role`` use a table key, only through DynamoDB (once per role and key is enough)."""
    # DynamoDB unwraps the table key with the caller's permission (kms:Decrypt) on reads and writes alike;
    # GenerateDataKey is what CDK's own write grants add as well. Only through DynamoDB, never directly.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey"],
            resources=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{Aws.REGION}.amazonaws.com"}},
        )
    )


def _attribute(attribute: Attribute) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=attribute.name, type=_TYPES[attribute.type])


def _sort_key(attribute: Attribute | None) -> dynamodb.Attribute | None:
    return None if attribute is None else _attribute(attribute)
