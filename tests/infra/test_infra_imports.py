"""The function of imported models (the tensor domain's): its routes, what it is told, and what it may touch.

It answers every model the catalogue does not name and the management API; it keeps the imported models under
their prefix of the model bucket (read, write, list there only) and reads, never writes, tenants' uploaded files.
"""

from __future__ import annotations

import json
from typing import Any

from aimass.contract import IMPORTED_MODELS_PREFIX
from infra.routes import IMPORT_ROUTES
from infra.stacks.serving_stack import function_logical_id
from models.catalogue import catalogue
from tests.infra.infra_synth import IMPORT_DOMAIN, Synthesized

FUNCTION = function_logical_id(IMPORT_DOMAIN)


def _role(synthesized: Synthesized) -> str:
    role_id: str = synthesized.resources[FUNCTION]["Properties"]["Role"]["Fn::GetAtt"][0]
    return role_id


def _on(synthesized: Synthesized, output: str) -> list[dict[str, Any]]:
    """The import function's statements on the bucket an output names (or that bucket's key)."""
    bucket = synthesized.output_ref(output)
    return [s for s in synthesized.role_statements(_role(synthesized)) if f'"{bucket}"' in json.dumps(s["Resource"])]


def test_imported_models_and_the_management_api_are_routed_to_it(synthesized: Synthesized) -> None:
    routed = synthesized.routed()
    for path, methods in IMPORT_ROUTES:
        for method in methods:
            assert routed[(method, path)] == FUNCTION
    # Catalogued models keep their own functions: the literal routes win over /v2/models/{proxy+}.
    assert routed[("ANY", "/v2/models/all-minilm-l6-v2")] == function_logical_id("text")
    assert routed[("ANY", "/v1/admin/{proxy+}")] == function_logical_id("text")  # keys and usage


def test_it_is_told_where_imports_live_what_it_holds_and_which_names_are_taken(synthesized: Synthesized) -> None:
    variables = synthesized.resources[FUNCTION]["Properties"]["Environment"]["Variables"]
    memory = synthesized.resources[FUNCTION]["Properties"]["MemorySize"]
    assert variables["AIMASS_MODEL_PREFIX"] == IMPORTED_MODELS_PREFIX
    assert variables["AIMASS_IMPORT_MEMORY_MB"] == str(memory)
    others = sorted(entry.name for entry in catalogue() if entry.domain != IMPORT_DOMAIN)
    assert json.loads(variables["AIMASS_RESERVED_MODEL_NAMES"]) == others
    assert variables["AIMASS_FILES_BUCKET"] == {"Ref": synthesized.output_ref("FilesBucketName")}
    front = synthesized.resources[function_logical_id("text")]["Properties"]["Environment"]["Variables"]
    assert front["AIMASS_IMPORT_DOMAIN"] == IMPORT_DOMAIN  # a batch of lines for an imported model runs there
    for domain in ("text", "vision"):
        others_variables = synthesized.resources[function_logical_id(domain)]["Properties"]["Environment"]["Variables"]
        assert "AIMASS_MODEL_PREFIX" not in others_variables and "AIMASS_RESERVED_MODEL_NAMES" not in others_variables


def test_it_writes_the_imported_models_prefix_and_nothing_else_of_the_model_bucket(synthesized: Synthesized) -> None:
    bucket_arn = {"Fn::GetAtt": [synthesized.output_ref("ModelBucketName"), "Arn"]}
    statements = [
        s for s in _on(synthesized, "ModelBucketName") if any(a.startswith("s3:") for a in _list(s["Action"]))
    ]
    objects = [s for s in statements if "s3:PutObject" in _list(s["Action"])]
    assert len(objects) == 1
    assert objects[0]["Resource"] == {"Fn::Join": ["", [bucket_arn, f"/{IMPORTED_MODELS_PREFIX}*"]]}
    listing = [s for s in statements if "s3:ListBucket" in _list(s["Action"])]
    assert listing[0]["Condition"] == {"StringLike": {"s3:prefix": [f"{IMPORTED_MODELS_PREFIX}*"]}}
    # No other object of the bucket: every statement on it is one of these two.
    assert len(statements) == 2


def test_it_reads_tenants_files_and_writes_none(synthesized: Synthesized) -> None:
    statements = _on(synthesized, "FilesBucketName")
    actions = {action for statement in statements for action in _list(statement["Action"])}
    assert actions == {"s3:GetObject", "s3:ListBucket"}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_a_checkout_without_the_import_domain_serves_no_imports(fake_synthesized: Synthesized) -> None:
    routed = fake_synthesized.routed()
    assert not {path for _, path in routed if path.startswith(("/v2/models/{proxy", "/v1/admin/models"))}
