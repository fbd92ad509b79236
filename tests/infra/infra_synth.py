"""Synthesis helpers for the infra tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before anything imports aws_cdk: jsii warns on every start under Node 20.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# The domains with a function in this checkout, found here independently of infra/config.py: every
# functions/<d>/Dockerfile but the API key authorizer's, which serves no domain.
AUTHORIZER = "authorizer"
DOCKERFILE_DOMAINS = sorted(
    path.parent.name for path in (REPO_ROOT / "functions").glob("*/Dockerfile") if path.parent.name != AUTHORIZER
)
# The domain whose function serves imported models (cdk.json's aimass:importDomain), and what it alone is told.
IMPORT_DOMAIN = "tensor"
IMPORT_VARIABLES = ("AIMASS_MODEL_PREFIX", "AIMASS_IMPORT_MEMORY_MB", "AIMASS_RESERVED_MODEL_NAMES")

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

    def api_methods(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every API Gateway method keyed by (HTTP method, full resource path)."""
        resources = self.resources_of_type("AWS::ApiGateway::Resource")

        def path_of(ref: dict[str, Any]) -> str:
            if "Fn::GetAtt" in ref:  # the RestApi's root resource
                return ""
            resource = resources[ref["Ref"]]["Properties"]
            return f"{path_of(resource['ParentId'])}/{resource['PathPart']}"

        methods: dict[tuple[str, str], dict[str, Any]] = {}
        for method in self.resources_of_type("AWS::ApiGateway::Method").values():
            key = (method["Properties"]["HttpMethod"], path_of(method["Properties"]["ResourceId"]))
            assert key not in methods, key
            methods[key] = method
        return methods

    def routed(self) -> dict[tuple[str, str], str]:
        """(HTTP method, path) -> logical id of the one function its integration invokes."""
        routed: dict[tuple[str, str], str] = {}
        for key, method in self.api_methods().items():
            parts = method["Properties"]["Integration"]["Uri"]["Fn::Join"][1]
            functions = [part["Fn::GetAtt"][0] for part in parts if isinstance(part, dict) and "Fn::GetAtt" in part]
            # A function with provisioned environments is invoked through its alias: the alias's function.
            aliases = [part["Ref"] for part in parts if isinstance(part, dict) and "Ref" in part]
            functions += [
                self.resources[alias]["Properties"]["FunctionName"]["Ref"]
                for alias in aliases
                if self.resources.get(alias, {}).get("Type") == "AWS::Lambda::Alias"
            ]
            assert len(functions) == 1, (key, parts)
            assert self.resources[functions[0]]["Type"] == "AWS::Lambda::Function", (key, functions)
            routed[key] = functions[0]
        return routed

    def output_ref(self, name: str) -> str:
        """The logical id an output's value refers to (``Ref`` or ``Fn::GetAtt``)."""
        value = self.template_json["Outputs"][name]["Value"]
        logical_id: str = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
        return logical_id

    def role_statements(self, role_id: str) -> list[dict[str, Any]]:
        """Every statement of the IAM policies attached to the role ``role_id``."""
        statements: list[dict[str, Any]] = []
        for policy in self.resources_of_type("AWS::IAM::Policy").values():
            if {"Ref": role_id} in policy["Properties"]["Roles"]:
                statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
        return statements

    def batch_role_ids(self) -> set[str]:
        """The roles of the batch workers (one job role per domain) and of the batch events function."""
        stack = self.stack.node.id
        return {
            key
            for key, role in self.resources_of_type("AWS::IAM::Role").items()
            if re.fullmatch(rf"{stack}/(Batch/\w+JobRole|BatchEvents/Role)/Resource", role["Metadata"]["aws:cdk:path"])
        }

    def validation_report(self) -> dict[str, Any]:
        # cdk-nag 3 reports through CDK's policy validation; the JSON report sits in the assembly.
        for name in ("validation-report.json", "policy-validation-report.json"):
            path = self.outdir / name
            if path.exists():
                report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                return report
        raise AssertionError(f"no validation report in {self.outdir}: {sorted(os.listdir(self.outdir))}")


def synthesize(outdir: Path, context: dict[str, Any] | None = None, *, repo_root: Path = REPO_ROOT) -> Synthesized:
    app = build_app(context, outdir=str(outdir), repo_root=repo_root)
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


# A made-up second domain for the checkout below: one model, one extra route, its own sizing.
TOY_FUNCTION_TOML = """memory_mb = 1024
timeout_s = 10
architecture = "x86_64"
routes = ["/v1/toy-compat"]
streaming = true
"""
TOY_DOCKERFILE = """FROM public.ecr.aws/lambda/provided:al2023 AS function
COPY layers/aimass ${LAMBDA_TASK_ROOT}/aimass
COPY functions/toy/handler.py ${LAMBDA_TASK_ROOT}/handler.py
COPY model_store/toy-model ${LAMBDA_TASK_ROOT}/model_store/toy-model
CMD ["handler.handler"]
"""


def fake_checkout(root: Path) -> Path:
    """A checkout with the real text function and authorizer and a made-up ``toy`` domain, no model built.

    Models: the real text model's spec (``models/text/minilm``) and ``toy-model`` of domain ``toy``. A
    fresh checkout has no model_store/ (it is built, never committed): synth must only stage.
    """
    text = root / "functions/text"
    (text / "aimass_text").mkdir(parents=True)
    (root / "layers/aimass").mkdir(parents=True)
    (root / "layers/aimass/__init__.py").write_text("", encoding="utf-8")
    for name in ("Dockerfile", "function.toml", "requirements.txt"):
        (text / name).write_bytes((REPO_ROOT / "functions/text" / name).read_bytes())
    (text / "handler.py").write_text("handler = None\n", encoding="utf-8")
    authorizer = root / "functions" / AUTHORIZER
    authorizer.mkdir(parents=True)
    for name in ("Dockerfile", "function.toml", "requirements.txt"):
        (authorizer / name).write_bytes((REPO_ROOT / "functions" / AUTHORIZER / name).read_bytes())
    (authorizer / "handler.py").write_text("handler = None\n", encoding="utf-8")
    # The batch workers' image, which the CDK app builds from every checkout.
    worker = root / "infra/images/batch-worker.Dockerfile"
    worker.parent.mkdir(parents=True)
    worker.write_bytes((REPO_ROOT / "infra/images/batch-worker.Dockerfile").read_bytes())
    toy = root / "functions/toy"
    toy.mkdir(parents=True)
    (toy / "Dockerfile").write_text(TOY_DOCKERFILE, encoding="utf-8")
    (toy / "function.toml").write_text(TOY_FUNCTION_TOML, encoding="utf-8")
    (toy / "handler.py").write_text("handler = None\n", encoding="utf-8")
    for domain, directory, name in (("text", "minilm", "all-minilm-l6-v2"), ("toy", "toy_model", "toy-model")):
        model = root / "models" / domain / directory
        model.mkdir(parents=True)
        (model / "spec.py").write_text(f'NAME = "{name}"\nVERSION = "1"\n', encoding="utf-8")
        (model / "build.py").write_text("", encoding="utf-8")
    return root
