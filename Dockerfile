# syntax=docker/dockerfile:1.7
#
# One image for the whole suite; the command picks the service:
#   docker build -t marketmesh:local .
#   docker run -e MM_PRICING_ADDR=0.0.0.0:50051 -p 127.0.0.1:50051:50051 marketmesh:local python -m services.pricing
# The default command is the launcher (every service in one container).
# docker-compose.yml runs one container per service from this image, and
# tests/test_compose.py keeps both in step with services/catalog.py.
#
# The builder stage needs a Rust toolchain, uv, grpcio-tools and maturin; the
# runtime stage gets only the virtualenv and services/ (stubs included).
# Both stages use the same base image: a venv points at its interpreter by
# path (/usr/local/bin/python3.11), so it only moves between equal bases.

# ---------------------------------------------------------------------------
# builder makes the locked venv, the core_rs wheel and the generated stubs.
FROM python:3.11-slim-bookworm AS builder

# UV_VERSION must equal the Makefile's (tests/test_compose.py checks).
ARG UV_VERSION=0.13.8
# RUST_VERSION is the toolchain core_rs is built with.
ARG RUST_VERSION=1.95.0

SHELL ["/bin/bash", "-euo", "pipefail", "-c"]

# gcc and libc6-dev link the Rust extension; curl fetches rustup.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

ENV RUSTUP_HOME=/opt/rustup \
    CARGO_HOME=/opt/cargo \
    PATH=/opt/cargo/bin:$PATH
RUN curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs \
    | sh -s -- -y --no-modify-path --profile minimal --default-toolchain "${RUST_VERSION}" \
 && rustc --version

RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1

# requirements.lock pins the runtime dependencies and the dev extra together
# (there is no separate runtime lock). This script cuts out of it the pins a
# set of roots needs, using the "# via" lines uv writes under every pin, and
# copies those pins and their hashes unchanged: the runtime venv gets exactly
# the locked versions of [project].dependencies and what they pull in, the
# build-tools venv those of grpcio-tools and maturin, and neither gets pytest,
# ruff or ta-lib. tests/test_compose.py runs it against the real lock.
COPY <<'PY' /build/lock_subset.py
"""Print the pins of a uv-compiled lock that ROOTs need, with their hashes.

Usage: lock_subset.py LOCK ROOT...; a ROOT ending in .toml stands for the
[project].dependencies of that pyproject. A pin is kept when a root names it
or when a kept pin requires it (uv lists those under the pin as "# via").
"""

import re
import sys
import tomllib


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def req_name(requirement: str) -> str:
    return norm(re.split(r"[\s=<>!~;\[@]", requirement.strip(), maxsplit=1)[0])


def parse(text: str) -> tuple[dict[str, list[str]], dict[str, set[str]]]:
    pins: dict[str, list[str]] = {}
    parents: dict[str, set[str]] = {}
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or line.startswith("#"):
            continue
        if not line[0].isspace():
            current = req_name(line)
            pins[current] = [line]
            parents[current] = set()
        elif stripped.startswith("#"):
            parent = stripped.lstrip("#").strip().removeprefix("via").strip()
            if parent and "(" not in parent:
                parents[current].add(norm(parent))
        else:
            pins[current].append(line)
    return pins, parents


def roots(args: list[str]) -> set[str]:
    names: set[str] = set()
    for arg in args:
        if arg.endswith(".toml"):
            with open(arg, "rb") as f:
                deps = tomllib.load(f)["project"]["dependencies"]
            names.update(req_name(dep) for dep in deps)
        else:
            names.add(norm(arg))
    return names


def main() -> None:
    lock, *root_args = sys.argv[1:]
    with open(lock) as f:
        pins, parents = parse(f.read())
    keep = roots(root_args)
    missing = sorted(keep - pins.keys())
    if missing:
        sys.exit(f"lock_subset: not in {lock}: {', '.join(missing)}")
    grew = True
    while grew:
        grew = False
        for name, required_by in parents.items():
            if name not in keep and required_by & keep:
                keep.add(name)
                grew = True
    for name in sorted(keep):
        print("\n".join(pins[name]))


main()
PY

WORKDIR /src
COPY requirements.lock pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/uv \
    python /build/lock_subset.py requirements.lock pyproject.toml > /build/runtime.txt \
 && python /build/lock_subset.py requirements.lock grpcio-tools maturin > /build/tools.txt \
 && uv venv --quiet --python /usr/local/bin/python3.11 /opt/venv \
 && uv venv --quiet --python /usr/local/bin/python3.11 /opt/build-tools \
 && uv pip sync --quiet --strict --require-hashes --python /opt/venv/bin/python /build/runtime.txt \
 && uv pip sync --quiet --strict --require-hashes --python /opt/build-tools/bin/python /build/tools.txt

# core_rs: a release wheel (pyproject turns on the "python" feature), installed
# into the runtime venv. --no-deps: its one dependency, numpy, is already
# there at the locked version.
COPY core_rs/ core_rs/
RUN --mount=type=cache,target=/opt/cargo/registry \
    cd core_rs \
 && /opt/build-tools/bin/maturin build --release --locked \
      --interpreter /opt/venv/bin/python --out /build/wheels \
 && uv pip install --quiet --no-deps --python /opt/venv/bin/python /build/wheels/core_rs-*.whl

# Stubs, as the Makefile's $(GEN)/.stamp recipe makes them.
COPY proto/ proto/
COPY services/ services/
RUN rm -rf services/common/gen && mkdir -p services/common/gen \
 && /opt/build-tools/bin/python -m grpc_tools.protoc -I proto \
      --python_out=services/common/gen --grpc_python_out=services/common/gen \
      --pyi_out=services/common/gen $(find proto -name '*.proto') \
 && find services/common/gen -type d -exec touch {}/__init__.py \; \
 && /opt/venv/bin/python -m compileall -q services \
 && /opt/venv/bin/python -c "import core_rs, services; from marketmesh.v1 import pricing_pb2_grpc; assert core_rs.__file__.startswith('/opt/venv/'), core_rs.__file__"

# ---------------------------------------------------------------------------
# runtime gets the venv and services/ only, and runs as an unprivileged user.
FROM python:3.11-slim-bookworm AS runtime

RUN groupadd --system --gid 10001 marketmesh \
 && useradd --system --uid 10001 --gid marketmesh --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin marketmesh \
 && mkdir -p /data \
 && chown marketmesh:marketmesh /data

# Code and venv stay owned by root: the service can write only to /data.
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /src/services /app/services

COPY <<'PY' /app/healthcheck.py
"""Container healthcheck: exit 0 only when grpc.health.v1 Check says SERVING.

healthcheck.py ADDR SERVICE  checks SERVICE at ADDR (docker-compose.yml runs this);
healthcheck.py               checks every catalog service whose module PID 1 runs
                             (all of them under the launcher), dialling 127.0.0.1
                             on the port of the service's address variable.
"""

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING


def serving(address: str, service: str) -> bool:
    request = health_pb2.HealthCheckRequest(service=service)
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(request, timeout=3)
        except grpc.RpcError as err:
            print(f"{service} at {address}: {err.code().name}", file=sys.stderr)
            return False
    if reply.status != SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        print(f"{service} at {address}: {status}", file=sys.stderr)
    return reply.status == SERVING


def targets() -> list[tuple[str, str]]:
    if len(sys.argv) == 3:
        return [(sys.argv[1], sys.argv[2])]
    if len(sys.argv) != 1:
        sys.exit("usage: healthcheck.py [ADDR SERVICE]")
    from services.catalog import SERVICES

    try:
        with open("/proc/1/cmdline", "rb") as f:
            command = f.read().decode(errors="replace").split("\0")
    except OSError:
        command = []
    specs = [s for s in SERVICES if s.module in command] or list(SERVICES)
    return [
        (
            "127.0.0.1:" + os.environ.get(s.address_env, s.default_address).rsplit(":", 1)[1],
            s.grpc_full_name,
        )
        for s in specs
    ]


results = [serving(address, service) for address, service in targets()]
sys.exit(0 if results and all(results) else 1)
PY

ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MM_LOG_FORMAT=json \
    MM_DATA_DIR=/data \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
VOLUME ["/data"]
USER 10001:10001

# The first start backfills history before health turns SERVING.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/app/healthcheck.py"]

CMD ["python", "-m", "services.launcher"]
