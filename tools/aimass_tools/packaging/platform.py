"""The target platform: what the base image runs, and therefore which wheels pip may install for it."""

from __future__ import annotations

from dataclasses import dataclass

TASK_ROOT = "/var/task"
# The CDK app's default architecture (context aimass:textArchitecture). arm64 functions would need the
# aarch64 wheels, which this twin does not assemble.
ARCH = "x86_64"


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
# A function that streams its answers runs AI Mass's own Runtime API loop instead (aimass.http.lambda_streaming);
# its CMD names the app it serves, and its handler module still offers a buffered ``handler`` for local runs.
STREAMING_ENTRYPOINT = ["/usr/bin/python3.11", "-m", "aimass.http.lambda_streaming"]
# A function image's ``server`` stage: the same payload, plus server mode, serving HTTP itself as a long-lived
# container (``python -m aimass_server``); its CMD is empty, as nothing is handed to the server on the command line.
SERVER_ENTRYPOINT = ["/usr/bin/python3.11", "-m", "aimass_server"]
