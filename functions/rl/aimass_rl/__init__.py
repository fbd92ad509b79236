"""The rl domain: trained policies that map environment observations to actions."""

from aimass_rl.runtime import PolicyRuntime as Runtime

__all__ = ["Runtime"]
