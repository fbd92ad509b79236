"""Batches on AWS against moto's server over real HTTP: the DynamoDB store, the S3 work store, AWS Batch.

The store's promises are the ones the API, the workers and the finalizer rely on: a status moves once however
many processes race it, a retried shard counts once, a tenant never sees another's batch, and a move made from
a record read before a shard finished keeps that shard's counts.

The server answers one request at a time (``tests.moto_server``, ``serial``): moto's threaded server does not
lock its tables, so it could admit two conditional writes DynamoDB applies one after the other.

moto models AWS Batch's control plane only: a submitted job is kept with its queue, overrides, tags and array
size, and its children start threads that would run Docker; with no Docker daemon they end FAILED at once.
moto does not report a job's retry strategy or tag propagation, and a cancelled or terminated array parent
keeps the status it had (SUBMITTED) with the reason given, which is what the launcher's tests read.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.config import Config

from aimass.batches.aws_batch import AwsBatchLauncher, job_name, shard_states
from aimass.batches.aws_factory import open_aws_batches
from aimass.batches.dynamodb import DynamoDBBatchStore, sort_key
from aimass.batches.model import BatchRecord, ShardResult, new_batch_id
from aimass.batches.work_s3 import S3WorkStore
from aimass.contract import BATCH_ID_ENV, BATCH_TENANT_ENV, JOBS_TABLE
from aimass.errors import ServiceUnavailable
from aimass.settings import BatchTarget, Settings
from tests.moto_server import CREDENTIALS, REGION, MotoServer
from tests.moto_server import start as start_moto

TABLE = "aimass-jobs"
BUCKET = "aimass-files"
T0 = 1_780_000_000


@pytest.fixture(scope="module")
def serial_moto() -> Iterator[MotoServer]:
    yield from start_moto(serial=True)


@pytest.fixture
def aws(serial_moto: MotoServer) -> MotoServer:
    serial_moto.reset()
    return serial_moto


@pytest.fixture
def dynamodb(aws: MotoServer) -> Any:
    client = aws.client("dynamodb")
    client.create_table(**JOBS_TABLE.create_table(TABLE))
    return client


@pytest.fixture
def store(dynamodb: Any) -> DynamoDBBatchStore:
    return DynamoDBBatchStore(dynamodb, TABLE, now=lambda: T0 + 60)


def batch(tenant: str = "acme", *, created_at: int = T0, shards: int = 3, status: str = "in_progress") -> BatchRecord:
    return BatchRecord(
        id=new_batch_id(),
        tenant=tenant,
        key_id="0123456789ab",
        plan="default",
        endpoint="/v1/embeddings",
        domain="text",
        input_file_id="file-" + "A" * 24,
        input_owner=tenant,
        completion_window="24h",
        status=status,
        created_at=created_at,
        expires_at=created_at + 24 * 3600,
        total=10 * shards,
        offsets=tuple(range(0, 100 * (shards + 1), 100)),
    )


# --- the batch store ----------------------------------------------------------------------------------


def test_a_batch_is_kept_under_its_tenant_and_read_back_whole(store: DynamoDBBatchStore, dynamodb: Any) -> None:
    record = replace(batch(), metadata={"run": "nightly"}, job_id="job-1")
    store.create(record)

    item = dynamodb.get_item(
        TableName=TABLE, Key={"tenant": {"S": "acme"}, "sk": {"S": sort_key(T0, record.id)}}, ConsistentRead=True
    )["Item"]
    assert item["batch_id"] == {"S": record.id} and item["status"] == {"S": "in_progress"}
    assert item["sk"]["S"] == f"00{T0}#{record.id}" and "shards_done" not in item
    assert store.get("acme", record.id) == record and store.list("acme") == [record]

    assert store.get("globex", record.id) is None and store.list("globex") == []
    assert store.get("acme", new_batch_id()) is None and store.get("acme", "not-a-batch-id") is None


def test_creating_the_same_batch_twice_is_one_batch(store: DynamoDBBatchStore) -> None:
    record = batch()
    store.create(record)
    store.create(record)  # a retried put
    with pytest.raises(ValueError, match=record.id):
        store.create(replace(record, total=1))
    assert store.list("acme") == [record]


def test_a_tenants_batches_are_listed_newest_first(store: DynamoDBBatchStore) -> None:
    records = [batch(created_at=T0 + n // 2) for n in range(6)] + [batch("globex", created_at=T0 + 9)]
    for record in records:
        store.create(record)
    newest_first = sorted(records[:6], key=lambda r: (r.created_at, r.id), reverse=True)
    assert [r.id for r in store.list("acme")] == [r.id for r in newest_first]
    assert store.list("globex") == [records[6]]


def test_a_status_moves_once_however_many_race_it(store: DynamoDBBatchStore) -> None:
    record = batch()
    store.create(record)
    racers = 8
    start = threading.Barrier(racers)

    def move(n: int) -> bool:
        start.wait()
        moved = record.moved("cancelling" if n % 2 else "finalizing", T0 + 1, job_id=f"job-{n}")
        return store.save(moved, expect={"in_progress"})

    with ThreadPoolExecutor(racers) as pool:
        won = list(pool.map(move, range(racers)))

    assert won.count(True) == 1
    winner = won.index(True)
    kept = store.get("acme", record.id)
    assert kept is not None and kept.job_id == f"job-{winner}"
    assert kept.status == ("cancelling" if winner % 2 else "finalizing")


def test_a_move_from_another_status_or_of_no_batch_is_refused(store: DynamoDBBatchStore) -> None:
    record = batch(status="validating")
    store.create(record)
    assert store.save(record.moved("finalizing", T0 + 1), expect={"in_progress", "cancelling"}) is False
    assert store.save(record.moved("failed", T0 + 1), expect=()) is False
    assert store.get("acme", record.id) == record

    absent = batch()
    assert store.save(absent.moved("cancelling", T0 + 1), expect={"in_progress"}) is False
    assert store.get("acme", absent.id) is None and store.list("acme") == [record]


def test_a_shard_counts_once_however_often_it_is_reported(store: DynamoDBBatchStore) -> None:
    record = batch()
    store.create(record)

    first = store.shard_done("acme", record.id, 1, ShardResult(completed=9, failed=1, units={"tokens": 50}))
    assert first is not None and (first.completed, first.failed, first.shards_done) == (9, 1, (1,))
    assert store.shard_done("acme", record.id, 1, ShardResult(completed=9, failed=1)) is None

    racers = 6
    start = threading.Barrier(racers)

    def report(_: int) -> BatchRecord | None:
        start.wait()
        return store.shard_done("acme", record.id, 0, ShardResult(completed=10))

    with ThreadPoolExecutor(racers) as pool:
        answers = list(pool.map(report, range(racers)))
    counted = [answer for answer in answers if answer is not None]
    assert len(counted) == 1 and counted[0].shards_done == (0, 1)

    kept = store.get("acme", record.id)
    assert kept is not None and (kept.completed, kept.failed, kept.shards_done) == (19, 1, (0, 1))
    assert replace(kept, completed=0, failed=0, shards_done=()) == record


def test_a_shard_of_another_tenants_or_no_batch_is_not_counted(store: DynamoDBBatchStore) -> None:
    record = batch()
    store.create(record)
    assert store.shard_done("globex", record.id, 0, ShardResult(completed=10)) is None
    assert store.shard_done("acme", new_batch_id(), 0, ShardResult(completed=10)) is None
    assert store.get("acme", record.id) == record


def test_a_move_from_a_record_read_before_a_shard_finished_keeps_that_shard(store: DynamoDBBatchStore) -> None:
    # GIVEN a record read while shards run, and a shard counted after the read
    record = batch()
    store.create(record)
    stale = store.get("acme", record.id)
    assert stale is not None
    store.shard_done("acme", record.id, 2, ShardResult(completed=7, failed=3))

    # WHEN the stale record is moved (a cancel)
    assert store.save(stale.moved("cancelling", T0 + 5), expect={"in_progress"}) is True

    # THEN the move is made and the shard's counts stay
    kept = store.get("acme", record.id)
    assert kept is not None and kept.status == "cancelling" and kept.cancelling_at == T0 + 5
    assert (kept.completed, kept.failed, kept.shards_done) == (7, 3, (2,))


def test_a_move_racing_every_shard_loses_none(store: DynamoDBBatchStore) -> None:
    record = batch(shards=8)
    store.create(record)
    start = threading.Barrier(9)

    def report(shard: int) -> bool:
        start.wait()
        if shard == 8:  # the cancel, from the record as created
            return store.save(record.moved("cancelling", T0 + 1), expect={"in_progress"})
        return store.shard_done("acme", record.id, shard, ShardResult(completed=shard + 1)) is not None

    with ThreadPoolExecutor(9) as pool:
        assert all(pool.map(report, range(9)))
    kept = store.get("acme", record.id)
    assert kept is not None and kept.status == "cancelling"
    assert kept.shards_done == tuple(range(8)) and kept.completed == sum(range(1, 9))


def test_a_final_tally_from_a_record_read_before_a_shard_finished_is_kept_with_that_shard(
    store: DynamoDBBatchStore,
) -> None:
    # GIVEN a batch moved to finalizing from a record that had not seen shard 1 counted
    record = batch()
    store.create(record)
    store.shard_done("acme", record.id, 0, ShardResult(completed=10))
    stale = store.get("acme", record.id)
    assert stale is not None
    store.shard_done("acme", record.id, 1, ShardResult(completed=9, failed=1))
    finalizing = stale.moved("finalizing", T0 + 5)
    assert store.save(finalizing, expect={"in_progress", "cancelling"}) is True

    # WHEN the finalizer ends it with its tally of every written chunk (shard 2's lines answered as errors)
    ended = finalizing.moved("cancelled", T0 + 6, completed=19, failed=11)
    assert store.save(ended, expect={"finalizing"}) is True

    # THEN the tally is kept, and so is every counted shard
    kept = store.get("acme", record.id)
    assert kept is not None and (kept.status, kept.completed, kept.failed) == ("cancelled", 19, 11)
    assert kept.shards_done == (0, 1) and kept.finalizing_at == T0 + 5 and kept.cancelled_at == T0 + 6
    assert store.save(stale.moved("cancelling", T0 + 7), expect={"in_progress"}) is False


def test_a_move_from_a_current_record_writes_its_counts(store: DynamoDBBatchStore) -> None:
    record = batch(shards=2)
    store.create(record)
    store.shard_done("acme", record.id, 0, ShardResult(completed=10))
    current = store.shard_done("acme", record.id, 1, ShardResult(completed=8, failed=2))
    assert current is not None

    # Every shard seen: the record's counts are written as they are, even lower ones.
    assert store.save(current.moved("finalizing", T0 + 9, failed=1), expect={"in_progress"}) is True
    kept = store.get("acme", record.id)
    assert kept is not None and (kept.status, kept.completed, kept.failed) == ("finalizing", 18, 1)
    assert kept.shards_done == (0, 1)


class _Lagging:
    """A DynamoDB client whose GSI has not caught up yet: a query of an index finds nothing."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def query(self, **request: Any) -> Any:
        if "IndexName" in request:
            return {"Items": []}
        return self.client.query(**request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_batch_not_yet_in_the_index_is_found_while_it_is_recent(dynamodb: Any) -> None:
    record = batch(created_at=T0)
    DynamoDBBatchStore(dynamodb, TABLE).create(record)

    just_after = DynamoDBBatchStore(_Lagging(dynamodb), TABLE, now=lambda: T0 + 1)
    assert just_after.get("acme", record.id) == record and just_after.get("globex", record.id) is None
    counted = just_after.shard_done("acme", record.id, 0, ShardResult(completed=1))
    assert counted is not None and counted.shards_done == (0,)

    long_after = DynamoDBBatchStore(_Lagging(dynamodb), TABLE, now=lambda: T0 + 3600)
    assert long_after.get("acme", record.id) is None


def test_a_missing_table_is_unavailable(aws: MotoServer) -> None:
    store = DynamoDBBatchStore(aws.client("dynamodb"), "no-such-table")
    with pytest.raises(ServiceUnavailable):
        store.create(batch())
    with pytest.raises(ServiceUnavailable):
        store.list("acme")


# --- the work store -----------------------------------------------------------------------------------


@pytest.fixture
def s3(aws: MotoServer) -> Any:
    return aws.bucket(BUCKET)


def test_work_is_kept_under_the_prefix_read_listed_and_removed(s3: Any) -> None:
    work = S3WorkStore(s3, BUCKET, "batches")
    work.put("batch_a/00001/00000.jsonl", b"one\n")
    work.put("batch_a/00000/00001.jsonl", b"two\n")
    work.put("batch_b/00000/00000.jsonl", b"three\n")

    assert work.get("batch_a/00001/00000.jsonl") == b"one\n" and work.get("batch_a/nothing") is None
    assert work.keys("batch_a/") == ["batch_a/00000/00001.jsonl", "batch_a/00001/00000.jsonl"]
    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert {item["Key"] for item in listed} >= {"batches/batch_b/00000/00000.jsonl"}

    work.delete("batch_a/")
    assert work.keys("batch_a/") == [] and work.keys("") == ["batch_b/00000/00000.jsonl"]


def test_more_keys_than_a_page_are_listed_and_removed(s3: Any) -> None:
    work = S3WorkStore(s3, BUCKET, "batches/")
    names = [f"batch_a/{n:05d}" for n in range(1003)]
    for name in reversed(names):
        work.put(name, b"x")
    work.put("batch_b/kept", b"y")

    assert work.keys("batch_a/") == names
    work.delete("batch_a/")
    assert work.keys("") == ["batch_b/kept"]


def test_a_missing_bucket_is_unavailable(aws: MotoServer) -> None:
    work = S3WorkStore(aws.client("s3"), "no-such-bucket", "batches/")
    for call in (lambda: work.put("k", b"x"), lambda: work.get("k"), lambda: work.keys(""), lambda: work.delete("")):
        with pytest.raises(ServiceUnavailable):
            call()


# --- AWS Batch ----------------------------------------------------------------------------------------


@pytest.fixture
def batch_client(aws: MotoServer) -> Any:
    return batch_queue(aws)


def batch_queue(aws: MotoServer) -> Any:
    """AWS Batch with one queue on a managed EC2 environment that scales to zero, and the worker's definition."""
    iam, ec2, client = aws.client("iam"), aws.client("ec2"), aws.client("batch")
    role = iam.create_role(RoleName="aimass-batch-service", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    profile = iam.create_instance_profile(InstanceProfileName="aimass-batch-instance")["InstanceProfile"]["Arn"]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="aimass-batch", Description="workers", VpcId=vpc)["GroupId"]
    environment = client.create_compute_environment(
        computeEnvironmentName="aimass-text",
        type="MANAGED",
        state="ENABLED",
        computeResources={
            "type": "EC2",
            "minvCpus": 0,
            "maxvCpus": 16,
            "instanceTypes": ["optimal"],
            "instanceRole": profile,
            "subnets": [subnet],
            "securityGroupIds": [group],
        },
        serviceRole=role,
    )["computeEnvironmentArn"]
    client.create_job_queue(
        jobQueueName="aimass-text",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
    )
    client.register_job_definition(
        jobDefinitionName="aimass-text-worker",
        type="container",
        containerProperties={
            "image": "aimass-text:latest",
            "command": ["python", "-m", "aimass.worker"],
            "resourceRequirements": [{"type": "VCPU", "value": "2"}, {"type": "MEMORY", "value": "4096"}],
        },
    )
    return client


TARGETS = {"text": BatchTarget(queue="aimass-text", job_definition="aimass-text-worker")}


def described(client: Any, job_id: str) -> dict[str, Any]:
    job: dict[str, Any] = client.describe_jobs(jobs=[job_id])["jobs"][0]
    return job


def test_a_batch_is_one_array_job_with_a_child_per_shard(batch_client: Any) -> None:
    record = batch(shards=3)
    job_id = AwsBatchLauncher(batch_client, TARGETS).launch(record)
    assert job_id is not None

    job = described(batch_client, job_id)
    queue = batch_client.describe_job_queues(jobQueues=["aimass-text"])["jobQueues"][0]
    assert job["jobName"] == job_name(record.id) == f"aimass-{record.id}"
    assert job["jobQueue"] == queue["jobQueueArn"] and ":job-definition/aimass-text-worker:1" in job["jobDefinition"]
    assert job["arrayProperties"]["size"] == 3
    environment = {variable["name"]: variable["value"] for variable in job["container"]["environment"]}
    assert environment[BATCH_ID_ENV] == record.id and environment[BATCH_TENANT_ENV] == "acme"
    assert job["tags"] == {"aimass:batch": record.id, "aimass:tenant": "acme"}

    states = shard_states(batch_client, job_id)
    assert sum(states.values()) == 3
    assert set(states) <= {"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"}


def test_a_batch_of_one_shard_is_a_plain_job(batch_client: Any) -> None:
    job_id = AwsBatchLauncher(batch_client, TARGETS).launch(batch(shards=1))
    assert job_id is not None
    job = described(batch_client, job_id)
    assert "arrayProperties" not in job
    # moto moves the job on by itself (SUBMITTED, RUNNABLE, then FAILED without Docker): one job, one state.
    assert list(shard_states(batch_client, job_id).values()) == [1]
    assert shard_states(batch_client, "no-such-job") == {}


def test_a_batch_of_no_shards_starts_nothing(batch_client: Any) -> None:
    assert AwsBatchLauncher(batch_client, TARGETS).launch(batch(shards=0)) is None
    assert batch_client.list_jobs(jobQueue="aimass-text", jobStatus="SUBMITTED")["jobSummaryList"] == []


def test_a_cancel_stops_the_job_with_its_reason(batch_client: Any) -> None:
    launcher = AwsBatchLauncher(batch_client, TARGETS)
    record = batch(shards=4)
    job_id = launcher.launch(record)
    launcher.cancel(replace(record, job_id=job_id))
    launcher.cancel(record)  # no job yet: nothing to stop

    assert job_id is not None
    assert described(batch_client, job_id)["statusReason"] == f"AI Mass batch {record.id} was cancelled"


def test_a_domain_without_a_queue_is_unavailable(batch_client: Any) -> None:
    with pytest.raises(ServiceUnavailable, match="'speech'"):
        AwsBatchLauncher(batch_client, TARGETS).launch(replace(batch(), domain="speech"))


def test_more_shards_than_an_array_holds_are_refused(batch_client: Any) -> None:
    record = replace(batch(), offsets=tuple(range(10_002)))
    with pytest.raises(ServiceUnavailable, match="10001 shards"):
        AwsBatchLauncher(batch_client, TARGETS).launch(record)


def test_a_missing_queue_is_unavailable(batch_client: Any) -> None:
    launcher = AwsBatchLauncher(batch_client, {"text": BatchTarget(queue="gone", job_definition="aimass-text-worker")})
    with pytest.raises(ServiceUnavailable):
        launcher.launch(batch())


# --- every backend, unreachable; the factory ----------------------------------------------------------


def test_an_unreachable_endpoint_is_unavailable() -> None:
    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url="http://127.0.0.1:9",  # discard: nothing listens
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(connect_timeout=1, retries={"mode": "standard", "total_max_attempts": 1}),
        )

    record = batch()
    store = DynamoDBBatchStore(client("dynamodb"), TABLE)
    work = S3WorkStore(client("s3"), BUCKET, "batches/")
    launcher = AwsBatchLauncher(client("batch"), TARGETS)
    for call in (
        lambda: store.create(record),
        lambda: store.get("acme", record.id),
        lambda: store.list("acme"),
        lambda: store.save(record, expect={"in_progress"}),
        lambda: store.shard_done("acme", record.id, 0, ShardResult()),
        lambda: work.put("k", b"x"),
        lambda: work.get("k"),
        lambda: work.keys(""),
        lambda: launcher.launch(record),
        lambda: launcher.cancel(replace(record, job_id="job-1")),
    ):
        with pytest.raises(ServiceUnavailable, match="retry shortly"):
            call()


def test_the_factory_opens_what_the_settings_name(
    aws: MotoServer, dynamodb: Any, s3: Any, batch_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in aws.environment().items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        files_bucket=BUCKET,
        files_prefix="up",
        jobs_table=TABLE,
        batch_targets=TARGETS,
        aws_endpoint_url=aws.endpoint,
    )
    store, work, launcher = open_aws_batches(settings)

    record = batch()
    store.create(record)
    work.put(f"{record.id}/00000", b"x")
    job_id = launcher.launch(record)

    assert store.get("acme", record.id) == record
    assert s3.get_object(Bucket=BUCKET, Key=f"up/batches/{record.id}/00000")["Body"].read() == b"x"
    assert job_id is not None and described(batch_client, job_id)["jobName"] == job_name(record.id)

    with pytest.raises(ValueError, match="AIMASS_FILES_BUCKET"):
        open_aws_batches(Settings(jobs_table=TABLE))


def test_without_an_upload_prefix_work_is_under_batches(
    aws: MotoServer, s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in aws.environment().items():
        monkeypatch.setenv(name, value)
    _, work, _ = open_aws_batches(Settings(files_bucket=BUCKET, files_prefix="", aws_endpoint_url=aws.endpoint))
    work.put("batch_x/0", b"x")
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["batches/batch_x/0"]
    assert work.get("batch_x/0") == b"x"
