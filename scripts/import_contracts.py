"""Check the import contracts: `.importlinter`, plus the contracts that name each domain package.

    python scripts/import_contracts.py

Domains are found from the tree (``functions/<domain>/aimass_<domain>/``), as the server and the CDK app find
them, so a domain made by ``aimass new-domain`` is held to the same rules with no edit to `.importlinter`:
the serving core imports no domain (it finds them at run time), domains import neither operator tools, model
builds nor the CDK app, and no domain imports another. Then no module of the core or of the operator tools
may import itself back through others (a cycle), lazy imports inside functions included.
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "importlinter.ini"


def domain_packages() -> dict[str, Path]:
    return {path.name: path.parent for path in sorted(ROOT.glob("functions/*/aimass_*")) if path.is_dir()}


def config(domains: list[str]) -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    roots = parser["importlinter"]["root_packages"].split()
    parser["importlinter"]["root_packages"] = "\n".join([*roots, *domains])
    listed = "\n".join(domains)
    parser["importlinter:contract:core-finds-domains"] = {
        "name": "The serving core never imports a domain: it finds their runtimes at run time",
        "type": "forbidden",
        "source_modules": "aimass",
        "forbidden_modules": listed,
    }
    parser["importlinter:contract:domains-serve-only"] = {
        "name": "Domains import the serving core only: no operator tools, model builds or CDK app",
        "type": "forbidden",
        "source_modules": listed,
        "forbidden_modules": "aimass_tools\nmodels\ninfra",
    }
    if len(domains) > 1:
        parser["importlinter:contract:domains-independent"] = {
            "name": "No domain imports another",
            "type": "independence",
            "modules": listed,
        }
    return parser


def cycles(package: str) -> list[list[str]]:
    """Every group of ``package``'s modules that import one another round a cycle (Tarjan's algorithm)."""
    graph = grimp.build_graph(package, cache_dir=None)
    imports = {module: graph.find_modules_directly_imported_by(module) & graph.modules for module in graph.modules}
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = low[module] = len(order)
        stack.append(module)
        for imported in sorted(imports[module]):
            if imported not in order:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], order[imported])
        if low[module] == order[module]:
            group = stack[stack.index(module) :]
            del stack[stack.index(module) :]
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(imports):
        if module not in order:
            visit(module)
    return found


def main() -> int:
    domains = domain_packages()
    sys.path[:0] = [str(ROOT), *(str(folder) for folder in domains.values())]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w") as stream:
        config(list(domains)).write(stream)
    status = lint_imports(config_filename=str(OUT), no_logo=True, no_cache=True)
    for package in ("aimass", "aimass_tools"):
        for group in cycles(package):
            print(f"import cycle in {package}: {' <-> '.join(group)}")
            status = 1
    if status == 0:
        print("No import cycles in aimass or aimass_tools.")
    return status


if __name__ == "__main__":
    sys.exit(main())
