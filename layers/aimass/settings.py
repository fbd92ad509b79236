"""Typed settings, read from ``AIMASS_*`` environment variables once per process and validated at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class PeerSpec(BaseModel):
    """One other domain function, as the CDK app describes it to the front function (``aimass.peers``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str = Field(min_length=1)
    function: str = Field(min_length=1, description="Lambda function name or ARN")
    models: tuple[str, ...] = Field(default=(), description="the catalogued models routed to it")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AIMASS_", frozen=True)

    model_store: Path = Field(
        default=Path("model_store"),
        description="directory of built models, laid out as <name>/<version>/manifest.json",
    )
    domains: tuple[str, ...] | None = Field(
        default=None,
        description="domains this process serves (a function sets its own); None serves every domain found",
    )
    intra_op_threads: int = Field(
        default=0,
        ge=0,
        description="ONNX Runtime threads inside one operator; 0 lets ONNX Runtime use every core",
    )
    inter_op_threads: int = Field(default=1, ge=1, description="ONNX Runtime threads across operators")
    max_body_bytes: int = Field(
        default=6 * 1024 * 1024,
        gt=0,
        description="largest request body accepted; 6 MiB matches Lambda's synchronous payload limit",
    )
    max_batch_items: int = Field(default=256, gt=0, description="most items (strings, rows) in one request")
    peers: tuple[PeerSpec, ...] = Field(
        default=(),
        description="the other domain functions whose models the listings include (JSON; set on the front function)",
    )
    peer_cache_s: float = Field(default=10.0, ge=0, description="how long the peers' listings are reused")
    peer_timeout_s: float = Field(default=5.0, gt=0, description="connect and read timeout of one peer call")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
