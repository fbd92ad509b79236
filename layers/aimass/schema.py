"""The base of every pydantic model in AI Mass: a model builds its validator when first used, not when imported.

A function imports every model its routes name, yet its first request validates a handful: the settings, a
manifest, one request body. Built at import, the rest cost rl's cold start about 14 ms, a twentieth of it (the
handler's import and first answer, before and after, in fresh processes). Deferred, a model nested in another is
compiled into its holder's validator, and most never build one of their own. pydantic (2.14 and later) builds a
deferred model under a lock, so a first use on two threads at once (the model load beside a request) builds it
once.

FastAPI validates a request body through a ``TypeAdapter`` of the model annotated with the parameter's name as
an alias, which pydantic reports as an unsupported ``Field`` attribute; FastAPI silences that report while it
builds the adapter. Over a deferred model the adapter is built at the route's first request instead, outside
FastAPI's silencing, so the report would reach the logs of every function on its first body. It is silenced
here for that attribute alone: pydantic's other reports of the kind still surface.
"""

from __future__ import annotations

import warnings

from pydantic import BaseModel, ConfigDict
from pydantic.warnings import UnsupportedFieldAttributeWarning

warnings.filterwarnings(
    "ignore", message=r"The 'alias' attribute with value ", category=UnsupportedFieldAttributeWarning
)


class Schema(BaseModel):
    """``pydantic.BaseModel`` with ``defer_build``; a subclass's own ``model_config`` is merged over it."""

    model_config = ConfigDict(defer_build=True)
