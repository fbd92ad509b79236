"""moto's standalone server, run as its own process on 127.0.0.1: AWS adapters are tested over real HTTP.

The adapters see a real endpoint URL, so botocore serialises, signs and parses exactly as against AWS;
only the service behind the socket is moto's. One server per test session; ``reset`` empties it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tests.ports import free_port

REGION = "us-east-1"
# Credentials moto accepts; they never leave 127.0.0.1.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@dataclass(frozen=True)
class MotoServer:
    endpoint: str

    def environment(self) -> dict[str, str]:
        """What a process needs to send every boto3 call to this server (``AWS_ENDPOINT_URL``)."""
        return {**CREDENTIALS, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
        )

    def bucket(self, name: str) -> Any:
        """An S3 client, with the bucket ``name`` made."""
        client = self.client("s3")
        client.create_bucket(Bucket=name)
        return client

    def control(self, path: str, document: dict[str, Any]) -> None:
        """POST to moto's own control API (``/moto-api/...``): reset, configuration, queued results."""
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/{path}",
            data=json.dumps(document).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def reset(self) -> None:
        self.control("reset", {})


# moto's own server answers requests on threads without locking its DynamoDB tables, so two conditional
# writes to one item can both pass. DynamoDB applies them one at a time; a server that answers one request
# at a time keeps that property while the clients stay concurrent.
_SERIAL = """
import sys
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
app = DomainDispatcherApplication(create_backend_app)
run_simple("127.0.0.1", int(sys.argv[1]), app, threaded=False, request_handler=MotoRequestHandler)
"""


def start(*, serial: bool = False) -> Iterator[MotoServer]:
    """Start moto's server on a free port (``serial``: one request at a time), wait until it answers, stop it."""
    port = free_port()
    environment = {**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION}
    command = ["-c", _SERIAL, str(port)] if serial else ["-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(
        [sys.executable, *command],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = MotoServer(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{server.endpoint}/moto-api/data.json", timeout=2):
                    break
            except (urllib.error.URLError, ConnectionError):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on port {port}") from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)
