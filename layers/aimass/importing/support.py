"""Does the serving ONNX Runtime run this graph? Its opsets and operators, against the runtime's own registry.

ONNX Runtime lists the operator schemas it knows (each domain's newest opset is the newest ``since_version``
among them) and refuses a model whose opset is newer, or a node no schema of its opset defines. Those two
refusals are found here from the graph's own declarations, so that the message can name the opset or the
operator and say what to export instead; a session is still built afterwards (``importer``), and whatever it
refuses beyond these (a wrong attribute, a type no kernel takes) is reported in its own words.
"""

from __future__ import annotations

import functools
from collections import defaultdict

import onnxruntime as ort

from aimass.errors import UnsupportedModel
from aimass.importing.graph import DEFAULT_DOMAIN, GraphInfo

_DOMAIN_NAMES = {DEFAULT_DOMAIN: "ai.onnx"}
# Operators per model listed in a refusal, at most: a custom-op model may use hundreds.
_LISTED = 8


@functools.cache
def _schemas() -> dict[str, dict[str, list[int]]]:
    """domain -> operator -> the opsets (since_version) at which its schema changed, as this runtime knows them."""
    from onnxruntime.capi import _pybind_state

    found: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for schema in _pybind_state.get_all_operator_schema():
        found[schema.domain][schema.name].append(schema.since_version)
    return {domain: dict(ops) for domain, ops in found.items()}


def newest_opsets() -> dict[str, int]:
    """The newest opset of each operator domain the serving ONNX Runtime knows."""
    return {domain: max(max(versions) for versions in ops.values()) for domain, ops in _schemas().items()}


def runtime_version() -> str:
    return f"ONNX Runtime {ort.__version__}"


def check_support(info: GraphInfo, *, what: str = "the model") -> None:
    """Refuse a graph whose opsets or operators the serving ONNX Runtime does not have, naming them."""
    newest = newest_opsets()
    local = {domain for domain, _ in info.functions}
    for domain, version in sorted(info.opsets.items()):
        if domain in local:
            continue
        name = _DOMAIN_NAMES.get(domain, domain)
        if domain not in newest:
            users = sorted(op for d, op in info.operators if d == domain)
            raise UnsupportedModel(
                f"{what} uses operators of the domain '{name}' ({_listed(users)}), which {runtime_version()} does "
                "not have: custom operators need their own library; export the model with standard ONNX operators "
                "only (the exporter's custom-op options off)",
                param="file",
            )
        if version > newest[domain]:
            raise UnsupportedModel(
                f"{what} imports opset {version} of '{name}', newer than {runtime_version()} runs (up to opset "
                f"{newest[domain]}); export it again with opset {newest[domain]} or lower "
                f"(torch.onnx.export(..., opset_version={newest[domain]}); skl2onnx to_onnx(..., target_opset="
                f"{newest[domain]}))",
                param="file",
            )
    schemas = _schemas()
    missing: list[str] = []
    for domain, op in sorted(info.operators):
        if (domain, op) in info.functions or domain in local:
            continue
        opset = info.opsets.get(domain)
        since = schemas.get(domain, {}).get(op)
        if opset is None:
            missing.append(f"{op} (its domain '{_DOMAIN_NAMES.get(domain, domain)}' is not among the model's opsets)")
        elif since is None:
            missing.append(f"{op} (no such operator in '{_DOMAIN_NAMES.get(domain, domain)}')")
        elif min(since) > opset:
            missing.append(f"{op} (needs opset {min(since)}; the model imports opset {opset})")
    if missing:
        raise UnsupportedModel(
            f"{what} uses operators {runtime_version()} cannot run: {_listed(missing)}; export it again with "
            "standard operators of the opset it imports (a newer opset where an operator needs one, or the "
            "exporter's fallback for custom layers)",
            param="file",
        )


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:_LISTED])
    return shown if len(items) <= _LISTED else f"{shown} and {len(items) - _LISTED} more"
