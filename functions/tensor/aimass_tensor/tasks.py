"""The task endpoints an imported model may offer, ``POST /v1/tensor/<task>``, by the shape it was found to have.

Each is declared for every tensor function (``TensorRuntime.declared_tasks``), so that its route exists before
any model offering it is imported: a model imported while the server runs answers its task at once. A request
names its model (``"model"``); one that does not offer the task is a 400 naming those that do.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from aimass.errors import InvalidInput
from aimass.schema import Schema
from aimass.serving.tasks import Base64File, TaskResult, TaskSpec

CLASSIFY_IMAGES = "classify-images"
CLASSIFY_ROWS = "classify-rows"
EMBED = "embed"
MAX_IMAGES = 32
MAX_ROWS = 256
MAX_TEXTS = 256


class ClassifyImagesRequest(Schema):
    """Images in, each one's most likely labels back."""

    model_config = ConfigDict(extra="forbid")

    images: list[Base64File] = Field(min_length=1, max_length=MAX_IMAGES, description="JPEG, PNG, WebP or GIF images")
    top_k: int = Field(default=3, ge=1, description="labels per image, most likely first")


class ClassifyRowsRequest(Schema):
    """Rows of numbers in (a list per row, or a {feature: value} object where the model names its features),
    each row's most likely labels back."""

    model_config = ConfigDict(extra="forbid")

    rows: list[list[float] | dict[str, float]] = Field(min_length=1, max_length=MAX_ROWS)
    top_k: int = Field(default=1, ge=1, description="labels per row, most likely first")


class EmbedRequest(Schema):
    """Strings in, one vector each back (the same vectors /v1/embeddings answers)."""

    model_config = ConfigDict(extra="forbid")

    input: list[str] = Field(min_length=1, max_length=MAX_TEXTS)


SUMMARIES = {
    CLASSIFY_IMAGES: "Classify images with an imported image classifier",
    CLASSIFY_ROWS: "Classify rows with an imported tabular classifier",
    EMBED: "Embed strings with an imported text encoder",
}
REQUESTS: dict[str, type[BaseModel]] = {
    CLASSIFY_IMAGES: ClassifyImagesRequest,
    CLASSIFY_ROWS: ClassifyRowsRequest,
    EMBED: EmbedRequest,
}
FILE_FIELDS = {CLASSIFY_IMAGES: "images"}


def spec(task: str, run: Any) -> TaskSpec:
    return TaskSpec(REQUESTS[task], run, file_field=FILE_FIELDS.get(task), summary=SUMMARIES[task])


def _declared(request: BaseModel) -> TaskResult:
    # The routes are declared before any model offers them; a request reaches a model's own spec, never this.
    raise InvalidInput("no imported model offers this task", param="model")


def declared() -> dict[str, TaskSpec]:
    return {task: spec(task, _declared) for task in REQUESTS}
