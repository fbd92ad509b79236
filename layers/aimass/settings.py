"""Typed settings, read from ``AIMASS_*`` environment variables once per process and validated at start."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
