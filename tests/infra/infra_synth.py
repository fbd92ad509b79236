"""Synthesis helpers for the infra tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before anything imports aws_cdk: jsii warns on every start under Node 20.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aws_cdk import App, Stack  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra.app import build_app  # noqa: E402


@dataclass(frozen=True)
class Synthesized:
    app: App
    stack: Stack
    outdir: Path
    template_path: Path
    template_json: dict[str, Any]
    template: Template
    # The message of the error app.synth() raised (cdk-nag or other validation failure), if any.
    synth_error: str | None

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.template_json["Resources"]
        return resources

    def resources_of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == cfn_type}

    def validation_report(self) -> dict[str, Any]:
        # cdk-nag 3 reports through CDK's policy validation; the JSON report sits in the assembly.
        for name in ("validation-report.json", "policy-validation-report.json"):
            path = self.outdir / name
            if path.exists():
                report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                return report
        raise AssertionError(f"no validation report in {self.outdir}: {sorted(os.listdir(self.outdir))}")


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synthesized:
    app = build_app(context, outdir=str(outdir))
    stacks = [child for child in app.node.children if isinstance(child, Stack)]
    assert len(stacks) == 1, [stack.node.id for stack in stacks]
    stack = stacks[0]
    synth_error: str | None = None
    try:
        app.synth()
    except Exception as exc:  # jsii surfaces the validation failure as a RuntimeError
        synth_error = str(exc)
    template_path = outdir / stack.template_file
    template_json = json.loads(template_path.read_text(encoding="utf-8"))
    return Synthesized(
        app=app,
        stack=stack,
        outdir=outdir,
        template_path=template_path,
        template_json=template_json,
        template=Template.from_json(template_json),
        synth_error=synth_error,
    )
