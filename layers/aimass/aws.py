"""Every AWS client AI Mass makes, made here, with one timeout and retry policy.

The policy is the request path's. A function answers an API Gateway request, and API Gateway gives up on
it after 29 seconds (``aimass.contract.API_INTEGRATION_TIMEOUT_S``): a call that hangs past that answers
nobody, and a function held by it serves nobody else meanwhile. Every call AI Mass makes to AWS is a
single-item read or write (DynamoDB, KMS, API Gateway's control plane), answered in milliseconds when the
service is well, so a call that waits seconds is one that should fail and be tried again, and a request
whose calls keep failing should fail fast (503) and let its client retry, rather than hang:

* connect within ``CONNECT_TIMEOUT_S`` (2 s; a regional endpoint answers in milliseconds);
* no more than ``READ_TIMEOUT_S`` (5 s) without a byte of the answer;
* ``MAX_ATTEMPTS`` (3) attempts in all, in botocore's ``standard`` retry mode: jittered exponential backoff
  (at most 1 s, then 2 s, for a throttled call; a few hundredths of a second otherwise) and a client-wide
  retry quota, so a service that is down is not hammered by every request's retries.

So one call gives up within 3 x (2 s + 5 s) + 3 s = 24 s (``worst_case_s``), inside the integration timeout;
a function's own timeout (3 to 29 s, ``functions/<domain>/function.toml``) may end it sooner. botocore's
defaults would wait 60 s for a connection and 60 s for each read, and retry a DynamoDB call ten times.

Two callers need a different read timeout, and say so with ``read_timeout_s``:

* the front function's peer calls (``aimass.http.peers``) invoke another domain function, which may first have
  to start (a cold start loads its models): they wait ``AIMASS_PEER_TIMEOUT_S`` for its answer;
* the model store (``aimass.store.factory``) moves model files of megabytes to gigabytes, on the model-loading
  thread and in the operator's publish, not for a waiting request: a momentarily slow S3 part then costs a
  wait rather than a transfer started again, and S3 answers the completion of a large multipart upload only
  once it has assembled it. It waits ``MODEL_STORE_READ_TIMEOUT_S`` (60 s) for each read.

boto3 is imported by ``client`` alone, when the first client is made: a process that makes none (the local
server, a function without S3 or DynamoDB settings) never imports it, and one that does imports it on the
thread that first needs it (the model-loading thread, at a cold start). Clients are made in the
composition roots (``open_store``, ``open_key_store``, ``open_usage``, ``open_edge_keys``,
``unsealer_from_settings``, ``peers_from_settings``) and handed to the stores, which take any client.
"""

from __future__ import annotations

import threading
from typing import Any

CONNECT_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 5.0
MAX_ATTEMPTS = 3  # the first attempt included
RETRY_MODE = "standard"
# The most botocore's standard mode waits between attempts (1 s, then 2 s, for throttling; a service's
# x-amz-retry-after may ask for up to 5 s more).
_BACKOFF_S = (1.0, 2.0)
MODEL_STORE_READ_TIMEOUT_S = 60.0

# boto3's default session is not safe to make clients from on two threads at once (the model-loading thread
# makes the S3 client while the app's composition makes the DynamoDB one).
_making = threading.Lock()


def worst_case_s(read_timeout_s: float = READ_TIMEOUT_S) -> float:
    """The longest one call waits before it gives up: every attempt connecting and reading to its limits."""
    return MAX_ATTEMPTS * (CONNECT_TIMEOUT_S + read_timeout_s) + sum(_BACKOFF_S[: MAX_ATTEMPTS - 1])


def client(service: str, endpoint_url: str | None = None, *, read_timeout_s: float = READ_TIMEOUT_S) -> Any:
    """A boto3 client of ``service`` under the policy above, at ``endpoint_url`` (None: AWS itself).

    Raises botocore's ``BotoCoreError`` when no client can be made (no region configured, say); callers
    turn it into their own 503.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=read_timeout_s,
        retries={"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS},
    )
    with _making:
        return boto3.client(service, endpoint_url=endpoint_url, config=config)
