"""What the commands share: the console, the store option, the checkout they run in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aimass.settings import Settings

console = Console()

StoreOption = Annotated[
    Path | None, typer.Option("--store", help="model store directory [default: AIMASS_MODEL_STORE or ./model_store]")
]

# layers/aimass/cli/common.py -> the checkout root (where functions/ and models/ live).
CHECKOUT = Path(__file__).resolve().parents[3]


def settings_for(store: Path | None) -> Settings:
    return Settings(model_store=store) if store else Settings()
