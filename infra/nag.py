"""cdk-nag acknowledgements, recorded next to the construct they concern.

cdk-nag 3 runs as a CDK validation plugin and reads acknowledgements made with CDK's own
``Validations.of(scope).acknowledge(...)``. A finding is acknowledged by its full id,
``AwsSolutions::<rule>`` or ``AwsSolutions::<rule>[<finding>]`` for rules that report one finding
per offending action or resource (IAM5). The acknowledgement covers the scope and its children;
every one carries the reason it is safe, and the validation report repeats it.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

PLUGIN = "AwsSolutions"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding (``"APIG4"`` or ``"IAM5[Resource::*]"``) on ``scope``."""
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledgement of {rule} needs a real reason, got {reason!r}")
    rule_id = f"{PLUGIN}-{rule}"
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PLUGIN}::{rule_id}", reason=reason))
