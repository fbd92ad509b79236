"""Settings values from ``<PREFIX><FIELD>`` environment variables, read as pydantic-settings reads them.

pydantic-settings costs a function's cold start about 40 ms of imports (its sources pull in asyncio, argparse,
dotenv and importlib.metadata), for the one source the settings use: the environment. This reads that
source the same way: names matched without regard to case; a value given to a field of a container or model
type (a list, tuple, dict, model, or a union with one) decoded as JSON, any other passed to pydantic as the
string it is; values given to the constructor win, merged into a JSON object field key by key.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

_CONTAINERS = (BaseModel, Mapping, Sequence, tuple, set, frozenset, deque)


class SettingsError(ValueError):
    """An environment variable's value that is not the JSON its field's type needs.

    A ValueError, as pydantic-settings' own: what caught that catches this."""


def _is_complex(annotation: Any) -> bool:
    """Whether pydantic-settings reads a value for this annotation (not a union) as JSON."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_complex(typing.get_args(annotation)[0])
    for candidate in (annotation, origin):
        if not isinstance(candidate, type) or issubclass(candidate, (str, bytes)):
            continue
        if issubclass(candidate, _CONTAINERS) or dataclasses.is_dataclass(candidate):
            return True
    return False


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _union_is_complex(annotation: Any) -> bool:
    return any(_union_is_complex(arg) if _is_union(arg) else _is_complex(arg) for arg in typing.get_args(annotation))


def deep_update(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``; where both hold a dict under one key, those are merged the same way."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_update(merged[key], value)
        else:
            merged[key] = value
    return merged


def env_values(
    prefix: str, fields: Mapping[str, FieldInfo], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The values the environment gives the ``fields``, by field name.

    A container field's value is JSON; in a union with other types (``tuple[str, ...] | None``) a value that
    is not JSON is passed on as the string it is, for the field's validation to refuse. JSON ``null`` gives
    no value: the field keeps its default.
    """
    found = {key.lower(): value for key, value in (os.environ if environ is None else environ).items()}
    values: dict[str, Any] = {}
    for name, field in fields.items():
        value: Any = found.get(f"{prefix}{name}".lower())
        if value is None:
            continue
        container = _is_complex(field.annotation)
        if container or (_is_union(field.annotation) and _union_is_complex(field.annotation)):
            try:
                value = json.loads(value)
            except ValueError as exc:
                if container:
                    raise SettingsError(
                        f'error parsing value for field "{name}" from source "EnvSettingsSource"'
                    ) from exc
            if value is None:
                continue
        values[name] = value
    return values
