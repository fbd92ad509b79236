"""CDK app entry point: ``npx cdk synth`` (cdk.json runs ``.venv/bin/python infra/app.py``).

``build_app()`` builds the whole app without synthesizing it, for tests and for tools.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":  # pragma: no cover - run as a script by the CDK CLI
    # Running infra/app.py puts infra/ first on sys.path, where infra/constructs would shadow the
    # `constructs` library; import from the repository root instead.
    _infra = str(REPO_ROOT / "infra")
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _infra]
    sys.path.insert(0, str(REPO_ROOT))
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App, Tags, Validations  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from infra.config import ConfigError, ServingConfig  # noqa: E402
from infra.routes import RouteError  # noqa: E402
from infra.stacks.serving_stack import ServingStack  # noqa: E402
from models.catalogue import CatalogueError  # noqa: E402

# What the CDK CLI turns on by default, so that a plain `python infra/app.py` (and the tests)
# produce the same template: resource metadata with the construct path and, for SAM CLI
# (`sam local invoke -t cdk.out/<stack>.template.json TextFunction`), the image's build context.
CLI_DEFAULT_CONTEXT = {"aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True}


def cdk_json_context(repo_root: Path = REPO_ROOT) -> dict[str, Any]:
    """The ``context`` block of cdk.json (feature flags and the ``aimass:*`` defaults)."""
    context = json.loads((repo_root / "cdk.json").read_text(encoding="utf-8")).get("context", {})
    if not isinstance(context, dict):
        raise ValueError("cdk.json: 'context' must be an object")
    return context


def stack_name(config: ServingConfig) -> str:
    return f"AiMass-Serving-{config.stage}"


def build_app(
    context: Mapping[str, Any] | None = None, *, outdir: str | None = None, repo_root: Path = REPO_ROOT
) -> App:
    """Build the app: cdk.json context, then ``context`` on top (the CDK CLI's context wins over both).

    The functions, their settings and the model catalogue are read from the checkout at ``repo_root``.

    The settings are read and validated once (``ServingConfig``) before any construct is created;
    a bad value raises ``infra.config.ConfigError`` naming the context key (or the function.toml and
    key). A catalogued model whose domain has no function raises ``infra.routes.RouteError``.
    """
    app = App(
        context={**CLI_DEFAULT_CONTEXT, **cdk_json_context(), **(context or {})},
        outdir=outdir,
        # No AWS::CDK::Metadata resource: same template from `python infra/app.py` and the CLI,
        # and no usage data reported at deploy time.
        analytics_reporting=False,
    )
    config = ServingConfig.from_context(app.node.get_all_context())

    ServingStack(
        app,
        stack_name(config),
        config=config,
        repo_root=repo_root,
        description=(
            f"AI Mass serving ({config.stage}): one function per model domain, model and files buckets, "
            "metering tables, HTTPS API, dashboard and alarms"
        ),
        # No `env`: the stack is environment-agnostic. `cdk deploy` targets the account and
        # region of the credentials in use, and the template refers to them only through
        # AWS::AccountId / AWS::Region, so the same template deploys anywhere.
        termination_protection=config.stage == "prod",
    )
    Tags.of(app).add("project", "aimass")
    Tags.of(app).add("stage", config.stage)

    # cdk-nag 3 is a validation plugin: after synthesis it checks every template and fails the
    # synthesis on any finding not acknowledged (see infra/nag.py).
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    # The CDK CLI sets CDK_OUTDIR; a plain `python infra/app.py` writes to ./cdk.out as well
    # (App would otherwise pick a temporary directory).
    try:
        app = build_app(outdir=os.environ.get("CDK_OUTDIR") or str(REPO_ROOT / "cdk.out"))
    except (ConfigError, RouteError, CatalogueError) as exc:
        sys.exit(f"infra/app.py: {exc}")
    app.synth()


if __name__ == "__main__":  # pragma: no cover
    main()
