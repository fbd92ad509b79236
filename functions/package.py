"""Assemble a function's Lambda payload without Docker, by replaying its Dockerfile.

    python functions/package.py text [--out build/functions/text] [--model-store DIR]

The folder it writes stands for the image's ``${LAMBDA_TASK_ROOT}`` (``/var/task``): the pinned
requirements installed for the Lambda platform, the shared core, the function code and its models,
exactly as the Dockerfile's COPY and RUN lines lay them out. Tests import the handler from that folder
in an isolated interpreter, so a dependency missing from the requirements, a file the image does not
copy, or a build/dev tool sneaking into the image shows up without a Docker engine.

The Dockerfile is the single source: this script parses it and refuses any instruction or flag it
cannot replay faithfully, so the two cannot drift apart silently.

Besides the payload itself the folder holds two files the image does not:

* ``.env.json``: the image's ENV values verbatim (paths under ``/var/task``), its CMD, and the task
  root. ``local_env()`` turns it into the environment for a local run, rewriting ``/var/task`` to
  the folder.
* ``.payload.json``: the size report (MiB, the unit of Lambda's limits): the total and a breakdown
  into site-packages (per distribution), the shared core, the function code and the models.

The pip install is the slow step; its result is cached under ``build/pip-cache/<key>/``, keyed by the
sha256 of the requirements file and the target platform, so a rebuild takes seconds.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.util import cache_from_source
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]
PIP_CACHE = REPO / "build" / "pip-cache"
TASK_ROOT = "/var/task"
TASK_ROOT_VARS = ("${LAMBDA_TASK_ROOT}", "$LAMBDA_TASK_ROOT", TASK_ROOT)
# The CDK app's default architecture (context aimass:textArchitecture). arm64 functions would need the
# aarch64 wheels, which this twin does not assemble.
ARCH = "x86_64"
MIB = 1024 * 1024
ENV_FILE = ".env.json"
REPORT_FILE = ".payload.json"
MODEL_STORE_PREFIX = "model_store"


class PackagingError(Exception):
    """The Dockerfile cannot be replayed, or replaying it failed."""


# ---------------------------------------------------------------------------------------------------------
# The target platform


@dataclass(frozen=True)
class Platform:
    """What pip may install for one base image: its Python and the glibc of its operating system."""

    python: str
    glibc: tuple[int, int]
    os: str

    def pip_args(self) -> list[str]:
        # A manylinux_2_N wheel needs glibc >= 2.N, so every tag up to the image's glibc is allowed.
        # pip does not expand PEP 600 tags itself, hence one --platform per tag;
        # manylinux2014 covers the legacy aliases (pip expands it to manylinux2010 and manylinux1).
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{ARCH}" for m in range(5, minor + 1)] + [f"manylinux2014_{ARCH}"]
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python]
        for tag in tags:
            args += ["--platform", tag]
        return args


# AWS Lambda base images (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html). A new base
# image needs its entry here: the operating system decides which wheels can load in it.
BASE_IMAGES: dict[str, Platform] = {
    "public.ecr.aws/lambda/python:3.11": Platform("3.11", (2, 26), "Amazon Linux 2"),
    "public.ecr.aws/lambda/python:3.12": Platform("3.12", (2, 34), "Amazon Linux 2023"),
    "public.ecr.aws/lambda/python:3.13": Platform("3.13", (2, 34), "Amazon Linux 2023"),
    # The OS-only image: the Dockerfile installs Python (3.11 here) and the runtime interface client.
    "public.ecr.aws/lambda/provided:al2023": Platform("3.11", (2, 34), "Amazon Linux 2023"),
}
# The interpreter the entrypoint runs; the local interpreter stands in for it in the twin.
ENTRYPOINT = ["/usr/bin/python3.11", "-m", "awslambdaric"]


# ---------------------------------------------------------------------------------------------------------
# The Dockerfile, parsed


@dataclass(frozen=True)
class Copy:
    sources: tuple[str, ...]  # paths relative to the build context (the repository root)
    dest: PurePosixPath  # relative to the task root
    into_dir: bool  # the destination named a directory ("dest/"), as Docker reads a trailing slash


@dataclass(frozen=True)
class PipInstall:
    requirements: PurePosixPath  # relative to the task root: the file an earlier COPY put there


@dataclass(frozen=True)
class Remove:
    paths: tuple[PurePosixPath, ...]


Step = Copy | PipInstall | Remove


@dataclass
class Recipe:
    base: str
    platform: Platform
    steps: list[Step] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)


def read_recipe(dockerfile: Path) -> Recipe:
    """Parse the Dockerfile into the steps this script replays; anything else is an error."""
    recipe: Recipe | None = None
    for number, instruction, rest in _instructions(dockerfile.read_text()):
        where = f"{dockerfile}:{number}"
        if instruction == "FROM":
            if recipe is not None:
                raise PackagingError(f"{where}: one FROM only; multi-stage builds are not replayed")
            recipe = Recipe(base=rest, platform=_platform(rest, where))
            continue
        if recipe is None:
            raise PackagingError(f"{where}: {instruction} before FROM")
        if instruction == "COPY":
            recipe.steps.append(_parse_copy(rest, where))
        elif instruction == "RUN":
            recipe.steps.extend(_parse_run(rest, where))
        elif instruction == "ENV":
            recipe.env.update(_parse_env(rest, where))
        elif instruction == "CMD":
            recipe.cmd = _parse_cmd(rest, where)
        elif instruction == "ENTRYPOINT":
            if json.loads(rest) != ENTRYPOINT or recipe.platform.python != "3.11":
                raise PackagingError(f"{where}: ENTRYPOINT must be {json.dumps(ENTRYPOINT)} on a Python 3.11 base")
        else:
            raise PackagingError(f"{where}: {instruction} is not replayed; extend functions/package.py")
    if recipe is None or not recipe.cmd:
        raise PackagingError(f"{dockerfile}: needs a FROM and a CMD")
    return recipe


def _instructions(text: str) -> Iterator[tuple[int, str, str]]:
    """(line number, INSTRUCTION, arguments), comments and blank lines dropped, continuations joined."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        joined = " ".join([*pending, line]).strip()
        pending = []
        instruction, _, rest = joined.partition(" ")
        yield start, instruction.upper(), rest.strip()
    if pending:
        raise PackagingError(f"line {start}: the last instruction ends in a line continuation")


def _platform(image: str, where: str) -> Platform:
    name = image.split("@", 1)[0]  # a digest pins the same image as its tag
    if name not in BASE_IMAGES:
        raise PackagingError(f"{where}: unknown base image {name!r}; add it to BASE_IMAGES")
    return BASE_IMAGES[name]


def _task_path(raw: str, where: str) -> PurePosixPath:
    """A path inside the image's task root, relative to it."""
    for prefix in TASK_ROOT_VARS:
        if raw == prefix or raw.startswith(prefix + "/"):
            relative = PurePosixPath(raw[len(prefix) :].lstrip("/") or ".")
            if ".." in relative.parts:
                raise PackagingError(f"{where}: {raw!r} leaves the task root")
            return relative
    raise PackagingError(f"{where}: {raw!r} is outside ${{LAMBDA_TASK_ROOT}}")


def _parse_copy(rest: str, where: str) -> Copy:
    words = shlex.split(rest)
    flags = [word for word in words if word.startswith("--")]
    # Ownership and permissions do not change what the payload holds; anything else (--from) does.
    unknown = [flag for flag in flags if not flag.startswith(("--chown=", "--chmod=", "--link"))]
    if unknown:
        raise PackagingError(f"{where}: COPY {' '.join(unknown)} is not replayed")
    paths = [word for word in words if not word.startswith("--")]
    if len(paths) < 2:
        raise PackagingError(f"{where}: COPY needs a source and a destination")
    *sources, dest = paths
    globbed = [source for source in sources if set(source) & set("*?[")]
    if globbed:
        raise PackagingError(f"{where}: COPY wildcards are not replayed: {globbed}")
    into_dir = dest.endswith("/") or len(sources) > 1
    return Copy(tuple(sources), _task_path(dest.rstrip("/") or dest, where), into_dir)


def _parse_run(rest: str, where: str) -> list[Step]:
    """RUN is replayed only as ``pip install -r ... --target ${LAMBDA_TASK_ROOT}`` and ``rm`` commands.

    ``dnf`` lines that install the base image's Python are accepted and skipped: the interpreter running
    the twin stands in for it (BASE_IMAGES says which version that must be).
    """
    steps: list[Step] = []
    for command in _split_commands(shlex.split(rest)):
        if _installs_python(command):
            continue
        if command and command[0] == "rm":
            paths = [word for word in command[1:] if not word.startswith("-")]
            steps.append(Remove(tuple(_task_path(path, where) for path in paths)))
        else:
            steps.append(_parse_pip(command, where))
    return steps


def _installs_python(command: list[str]) -> bool:
    if command == ["dnf", "clean", "all"]:
        return True
    if command[:3] != ["dnf", "install", "-y"] or len(command) == 3:
        return False
    return all(re.fullmatch(r"python3\.\d+(-pip)?", package) for package in command[3:])


def _split_commands(words: list[str]) -> Iterator[list[str]]:
    command: list[str] = []
    for word in words:
        if word == "&&":
            yield command
            command = []
        else:
            command.append(word)
    yield command


_PIP_PREFIXES = (
    ["pip", "install"],
    ["pip3", "install"],
    ["python", "-m", "pip", "install"],
    ["python3.11", "-m", "pip", "install"],
)
# Flags that do not change what gets installed.
_PIP_NEUTRAL = {"--no-cache-dir", "--disable-pip-version-check", "--quiet", "-q", "--no-deps"}
_PIP_VALUED = {"-r": "requirements", "--requirement": "requirements", "-t": "target", "--target": "target"}


def _parse_pip(command: list[str], where: str) -> PipInstall:
    prefix = next((p for p in _PIP_PREFIXES if command[: len(p)] == p), None)
    if prefix is None:
        raise PackagingError(f"{where}: RUN {' '.join(command)!r} is not replayed (only pip install and rm)")
    values: dict[str, str] = {}
    words = iter(command[len(prefix) :])
    for word in words:
        if word in _PIP_VALUED:
            values[_PIP_VALUED[word]] = next(words, "")
        elif word not in _PIP_NEUTRAL:
            raise PackagingError(f"{where}: pip install {word!r} is not replayed")
    # The requirements file is a pinned closure: without --no-deps pip would add what the file leaves
    # out on purpose (huggingface-hub and its dependencies, declared by tokenizers).
    if "--no-deps" not in command:
        raise PackagingError(f"{where}: pip install must pass --no-deps (the requirements are a full closure)")
    target = values.get("target")
    if "requirements" not in values or target is None or _task_path(target, where) != PurePosixPath("."):
        raise PackagingError(f"{where}: pip install needs -r <file> and --target ${{LAMBDA_TASK_ROOT}}")
    return PipInstall(_task_path(values["requirements"], where))


def _parse_env(rest: str, where: str) -> dict[str, str]:
    words = shlex.split(rest)  # Docker strips unescaped quotes the way a POSIX shell does
    if words and "=" not in words[0]:
        # The legacy form: ENV KEY value with spaces.
        return {words[0]: _expand(" ".join(words[1:]))}
    if not all("=" in word for word in words):
        raise PackagingError(f"{where}: ENV expects KEY=value pairs")
    return {key: _expand(value) for key, _, value in (word.partition("=") for word in words)}


def _expand(value: str) -> str:
    # The base image sets LAMBDA_TASK_ROOT; Docker expands it in ENV values.
    return value.replace("${LAMBDA_TASK_ROOT}", TASK_ROOT).replace("$LAMBDA_TASK_ROOT", TASK_ROOT)


def _parse_cmd(rest: str, where: str) -> list[str]:
    try:
        cmd = json.loads(rest)
    except json.JSONDecodeError:
        cmd = None
    if not (isinstance(cmd, list) and len(cmd) == 1 and re.fullmatch(r"[\w.]+\.\w+", str(cmd[0]))):
        raise PackagingError(f'{where}: CMD must be the exec form ["module.function"]')
    return [str(cmd[0])]


# ---------------------------------------------------------------------------------------------------------
# .dockerignore: the twin copies what the build context holds, not what the checkout holds


def read_dockerignore(context: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception "!", pattern) per line, in order: the last pattern that matches decides."""
    path = context / ".dockerignore"
    rules: list[tuple[bool, re.Pattern[str]]] = []
    if not path.exists():
        return rules
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((negate, re.compile(_glob_regex(pattern))))
    return rules


def _glob_regex(pattern: str) -> str:
    # Docker's matching: "**" spans directories, "*" and "?" stay within one path component.
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
    table = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return "".join(table.get(part, re.escape(part)) for part in parts)


def is_ignored(path: PurePosixPath, rules: Sequence[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out; a pattern excludes what is below it."""
    candidates = [str(path), *(str(parent) for parent in path.parents if str(parent) != ".")]
    ignored = False
    for negate, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negate
    return ignored


# ---------------------------------------------------------------------------------------------------------
# Replaying the steps


@dataclass(frozen=True)
class Sources:
    """Where COPY sources come from: the build context, with model_store/ optionally elsewhere."""

    context: Path
    model_store: Path | None
    ignore: list[tuple[bool, re.Pattern[str]]]

    def resolve(self, source: str) -> Path:
        relative = PurePosixPath(source.lstrip("/"))
        if self.model_store is not None and relative.parts[:1] == (MODEL_STORE_PREFIX,):
            return self.model_store.joinpath(*relative.parts[1:])
        return self.context.joinpath(*relative.parts)


def _copy(step: Copy, out: Path, sources: Sources, where: str) -> None:
    for source in step.sources:
        origin = sources.resolve(source)
        logical = PurePosixPath(source.lstrip("/"))
        if not origin.exists() or is_ignored(logical, sources.ignore):
            raise PackagingError(f"{where}: COPY source {source!r} is not in the build context ({origin})")
        target = out / step.dest
        if origin.is_file():
            target = target / origin.name if step.into_dir else target
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)
        else:
            _copy_tree(origin, logical, target, sources.ignore)


def _copy_tree(
    origin: Path, logical: PurePosixPath, target: Path, ignore: Sequence[tuple[bool, re.Pattern[str]]]
) -> None:
    # Docker copies a directory's contents into the destination, minus what .dockerignore excludes
    # (__pycache__ and *.pyc among them).
    for file in sorted(p for p in origin.rglob("*") if p.is_file()):
        relative = file.relative_to(origin)
        if is_ignored(logical / relative.as_posix(), ignore):
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target / relative)


def _pip_install(step: PipInstall, out: Path, platform: Platform, cache_root: Path) -> bool:
    """Install the requirements into ``out`` from the cache, filling it first; True if it was cached."""
    requirements = out / step.requirements
    if not requirements.is_file():
        raise PackagingError(f"pip install -r {step.requirements}: no earlier COPY put that file there")
    args = platform.pip_args()
    key = hashlib.sha256(requirements.read_bytes() + json.dumps(args).encode()).hexdigest()[:16]
    cached = cache_root / key
    hit = cached.is_dir()
    if not hit:
        _fill_cache(requirements, args, cached, platform)
    # Hard links: the cache is never modified in place, and linking takes milliseconds where copying
    # a few hundred MB would not.
    shutil.copytree(cached, out, dirs_exist_ok=True, copy_function=_link_or_copy)
    return hit


def _fill_cache(requirements: Path, args: list[str], cached: Path, platform: Platform) -> None:
    cached.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{cached.name}.partial-", dir=cached.parent))
    try:
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check"]
        command += ["--target", str(work), "-r", str(requirements), *args]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise PackagingError(
                f"pip could not install {requirements.name} for the base image's platform "
                f"({platform.os}, glibc {platform.glibc[0]}.{platform.glibc[1]}, Python {platform.python}, "
                f"{ARCH}); a wheel built for a newer glibc (manylinux_2_N above it) cannot load there.\n"
                + "\n".join(line for line in result.stderr.splitlines() if line.startswith("ERROR"))
            )
        try:
            work.rename(cached)  # atomic: a concurrent build sees the whole cache entry or none
        except OSError:
            if not cached.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)
    except OSError:  # another filesystem
        shutil.copy2(source, target)
    return target


# ---------------------------------------------------------------------------------------------------------
# The size report


@dataclass
class Report:
    function: str
    base_image: str
    platform: str
    total_mb: float
    groups: dict[str, float]  # site-packages, core, function, models
    packages: list[dict[str, str | float]]  # site-packages per distribution, largest first
    seconds: float
    pip_cached: bool


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _mb(size: int) -> float:
    return round(size / MIB, 2)


def _distributions(out: Path) -> list[dict[str, str | float]]:
    """Site-packages per distribution: the files its RECORD lists (package, .libs, dist-info), compiled too."""
    rows: list[dict[str, str | float]] = []
    for info in sorted(out.glob("*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        with (info / "RECORD").open(newline="") as handle:
            files = {out / row[0] for row in csv.reader(handle) if row and not row[0].startswith("..")}
        # The compiled modules, whether or not this pip version lists them in RECORD.
        files |= {Path(cache_from_source(str(f))) for f in files if f.suffix == ".py"}
        size = sum(f.stat().st_size for f in files if f.is_file())
        rows.append({"name": name, "version": version, "mb": _mb(size)})
    return sorted(rows, key=lambda row: -float(row["mb"]))


def _group(step: Copy) -> str:
    if step.dest.parts[:1] == (MODEL_STORE_PREFIX,):
        return "models"
    return "core" if all(source.startswith("layers/") for source in step.sources) else "function"


def _report(function: str, recipe: Recipe, out: Path, seconds: float, pip_cached: bool) -> Report:
    groups = {"site-packages": 0, "core": 0, "function": 0, "models": 0}
    for step in recipe.steps:
        if isinstance(step, Copy) and (out / step.dest).exists():  # the requirements file is gone
            groups[_group(step)] += _size(out / step.dest)
    total = sum(_size(p) for p in out.iterdir() if p.name not in (ENV_FILE, REPORT_FILE))
    # What no COPY put there came from pip.
    groups["site-packages"] = total - sum(groups.values())
    return Report(
        function=function,
        base_image=recipe.base,
        platform=f"{recipe.platform.os}, glibc {'.'.join(map(str, recipe.platform.glibc))}, "
        f"Python {recipe.platform.python}, {ARCH}",
        total_mb=_mb(total),
        groups={name: _mb(size) for name, size in groups.items()},
        packages=_distributions(out),
        seconds=round(seconds, 2),
        pip_cached=pip_cached,
    )


def print_report(report: Report) -> None:
    print(f"{report.function}: {report.total_mb:.1f} MiB payload for {report.base_image} ({report.platform})")
    for name, mb in report.groups.items():
        print(f"  {name:<14} {mb:8.1f} MiB")
    for row in report.packages:
        print(f"    {row['name']:<20} {row['version']:<12} {float(row['mb']):8.1f} MiB")
    cache = "pip step cached" if report.pip_cached else "pip step run"
    print(f"  built in {report.seconds:.1f} s ({cache})")


# ---------------------------------------------------------------------------------------------------------
# Entry points


def build_payload(
    function: str,
    out: Path,
    *,
    dockerfile: Path | None = None,
    context: Path = REPO,
    model_store: Path | None = None,
    pip_cache: Path = PIP_CACHE,
) -> Report:
    """Replay ``functions/<function>/Dockerfile`` into ``out`` (replaced); return the size report."""
    started = time.perf_counter()
    dockerfile = dockerfile or context / "functions" / function / "Dockerfile"
    recipe = read_recipe(dockerfile)
    _prepare_out(out)
    sources = Sources(context, model_store, read_dockerignore(context))
    pip_cached = False
    for step in recipe.steps:
        where = f"{dockerfile}: {type(step).__name__}"
        if isinstance(step, Copy):
            _copy(step, out, sources, where)
        elif isinstance(step, PipInstall):
            pip_cached = _pip_install(step, out, recipe.platform, pip_cache)
        else:
            for path in step.paths:
                _remove(out / path)
    _check_cmd(recipe, out)
    environment = {"task_root": TASK_ROOT, "env": recipe.env, "cmd": recipe.cmd}
    (out / ENV_FILE).write_text(json.dumps(environment, indent=2) + "\n")
    report = _report(function, recipe, out, time.perf_counter() - started, pip_cached)
    (out / REPORT_FILE).write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _prepare_out(out: Path) -> None:
    # The folder is replaced; refuse to wipe one this script did not write (a typo in --out).
    if out.exists() and any(out.iterdir()) and not (out / REPORT_FILE).exists():
        raise PackagingError(f"{out} is not empty and holds no {REPORT_FILE}; not replacing it")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)


def _check_cmd(recipe: Recipe, out: Path) -> None:
    module, _, _ = recipe.cmd[0].rpartition(".")
    relative = Path(*module.split("."))
    if not (out / relative.with_suffix(".py")).is_file() and not (out / relative / "__init__.py").is_file():
        raise PackagingError(f"CMD {recipe.cmd[0]!r}: the payload has no module {module!r}")


def local_env(payload: Path) -> dict[str, str]:
    """The image's ENV for a run from ``payload``: paths under /var/task point into the folder instead."""
    described = json.loads((payload / ENV_FILE).read_text())
    root = str(described["task_root"])

    def rewrite(value: str) -> str:
        parts = value.split(":")  # path lists too (LD_LIBRARY_PATH-like values)
        return ":".join(str(payload) + p[len(root) :] if p == root or p.startswith(root + "/") else p for p in parts)

    env = {str(key): rewrite(str(value)) for key, value in described["env"].items()}
    return {"LAMBDA_TASK_ROOT": str(payload), **env}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("function", help="the function to package, e.g. text (functions/<function>/Dockerfile)")
    parser.add_argument("--out", type=Path, help="payload folder (default: build/functions/<function>)")
    parser.add_argument("--model-store", type=Path, help="take the model_store/... COPY sources from DIR")
    args = parser.parse_args(argv)
    out = args.out or REPO / "build" / "functions" / args.function
    try:
        report = build_payload(args.function, out.resolve(), model_store=args.model_store)
    except PackagingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_report(report)
    print(f"  payload: {out}  (size report: {out / REPORT_FILE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
