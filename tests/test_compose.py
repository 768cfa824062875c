"""The container definitions stay in step with the service catalog.

No Docker engine runs here or in CI, so nothing is built: docker-compose.yml,
the Dockerfile and .dockerignore are read as text and checked against
services/catalog.py, DESIGN.md, the Makefile, pyproject.toml, core_rs/ and
requirements.lock. The two scripts the Dockerfile writes into the build (the
lock subset and the healthcheck) are run here for real.
"""

import importlib.metadata
import json
import os
import posixpath
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
import yaml
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from services.catalog import SERVICES, ServiceSpec

REPO = Path(__file__).resolve().parents[1]
DESIGN_MD = REPO.parent / "shared" / "DESIGN.md"

# Which services each one needs up (healthy) before it starts, keyed by name so
# the rule applies as soon as a service joins the catalog. Every catalog
# service must be listed: adding one means deciding what it depends on.
DEPENDENCIES: dict[str, tuple[str, ...]] = {
    "pricing": (),
    "signals": ("pricing",),
    "portfolio": ("pricing", "signals", "postgres"),
}
NON_CATALOG_SERVICES = {"postgres"}
POSTGRES_IMAGE = "postgres:16-bookworm"
PYTHON_IMAGE = "python:3.11-slim-bookworm"
DEV_ONLY = {"pytest", "ruff", "hypothesis", "ta-lib", "maturin", "grpcio-tools"}

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --------------------------------------------------------------------------
# Dockerfile, parsed just enough: stages, instructions, heredoc bodies.


@dataclass
class Instruction:
    keyword: str
    args: str
    workdir: str  # the WORKDIR in force when the instruction runs
    heredocs: dict[str, str] = field(default_factory=dict)


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def arg_defaults(self) -> dict[str, str]:
        out = {}
        for ins in self.all("ARG"):
            key, _, value = ins.args.partition("=")
            out[key.strip()] = value.strip().strip("\"'")
        return out

    def env(self) -> dict[str, str]:
        out = {}
        for ins in self.all("ENV"):
            for token in shlex.split(ins.args):
                key, sep, value = token.partition("=")
                assert sep, f"ENV {ins.args!r}: use KEY=VALUE"
                out[key] = value
        return out


_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_]\w*)\2")


def parse_dockerfile(text: str) -> list[Stage]:
    lines = text.splitlines()
    stages: list[Stage] = []
    workdir = "/"
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        logical = line.rstrip()
        while logical.endswith("\\"):
            logical = logical[:-1].rstrip()
            while i < len(lines) and lines[i].lstrip().startswith("#"):
                i += 1  # comments inside a continuation are dropped, as by Docker
            if i < len(lines):
                logical += " " + lines[i].strip()
                i += 1
        heredocs = {}
        for strip_tabs, _, delimiter in _HEREDOC.findall(logical):
            body = []
            while i < len(lines):
                raw = lines[i].lstrip("\t") if strip_tabs else lines[i]
                i += 1
                if raw == delimiter:
                    break
                body.append(raw)
            heredocs[delimiter] = "\n".join(body) + "\n"
        keyword, _, args = logical.strip().partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            tokens = [t for t in args.split() if not t.startswith("--")]
            name = tokens[2] if len(tokens) >= 3 and tokens[1].lower() == "as" else ""
            stages.append(Stage(base=tokens[0], name=name))
            workdir = "/"
            continue
        if keyword == "WORKDIR":
            workdir = posixpath.join(workdir, args)
        if stages:  # global ARGs before the first FROM are not needed here
            stages[-1].instructions.append(Instruction(keyword, args, workdir, heredocs))
    return stages


def commands(ins: Instruction) -> list[str]:
    """The shell commands of a RUN (its --mount flags dropped), split at &&, ; and |."""
    script = re.sub(r"^(--\S+\s+)*", "", ins.args)
    return [c.strip() for c in re.split(r"&&|(?<!\\);|\|", script) if c.strip()]


@dataclass
class Copy:
    sources: list[str]
    dest: str  # absolute
    from_stage: str
    heredoc: str | None


def copies(stage: Stage) -> list[Copy]:
    out = []
    for ins in stage.all("COPY") + stage.all("ADD"):
        tokens = shlex.split(ins.args)
        flags = dict(t[2:].partition("=")[::2] for t in tokens if t.startswith("--"))
        paths = [t for t in tokens if not t.startswith("--")]
        heredoc = next(iter(ins.heredocs.values()), None)
        out.append(
            Copy(
                sources=[] if heredoc is not None else paths[:-1],
                dest=posixpath.join(ins.workdir, paths[-1]).rstrip("/"),
                from_stage=flags.get("from", ""),
                heredoc=heredoc,
            )
        )
    return out


def exec_form(text: str) -> list[str]:
    value = json.loads(text)
    assert isinstance(value, list), f"{text!r}: use the exec (JSON) form"
    return value


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((REPO / "Dockerfile").read_text())


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def builder(stages: list[Stage], runtime: Stage) -> Stage:
    names = {c.from_stage for c in copies(runtime) if c.from_stage}
    assert len(names) == 1, f"the runtime stage should copy from one builder stage, not {names}"
    (name,) = names
    return next(s for s in stages if s.name == name)


@pytest.fixture(scope="module")
def venv(runtime: Stage) -> str:
    first = runtime.env()["PATH"].split(":")[0]
    assert first.endswith("/bin"), f"PATH should start with the venv's bin/, not {first}"
    return first.removesuffix("/bin")


def heredoc_script(stage: Stage, marker: str) -> tuple[str, str]:
    """(path, body) of the one heredoc the stage writes that contains `marker`."""
    found = [(c.dest, c.heredoc) for c in copies(stage) if c.heredoc and marker in c.heredoc]
    assert len(found) == 1, f"expected one script with {marker!r} written by COPY <<, got {found}"
    return found[0]


@pytest.fixture(scope="module")
def healthcheck_script(runtime: Stage) -> tuple[str, str]:
    return heredoc_script(runtime, "grpc_health.v1")


@pytest.fixture(scope="module")
def lock_subset_script(builder: Stage) -> tuple[str, str]:
    return heredoc_script(builder, "tomllib")


# --------------------------------------------------------------------------
# docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    assert name in compose["services"], f"docker-compose.yml has no service {name!r}"
    return compose["services"][name]


def env_of(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        return dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def published(svc: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """container port -> (host ip, host port) for the published ports."""
    out = {}
    for port in svc.get("ports") or []:
        if isinstance(port, dict):
            host_ip, host, container = port.get("host_ip", ""), port["published"], port["target"]
        else:
            parts = str(port).split("/")[0].split(":")
            if len(parts) == 1:
                continue  # only a container port: published on a random host port
            host_ip, host, container = ("", *parts) if len(parts) == 2 else parts
        out[int(container)] = (host_ip, int(host))
    return out


def mounts(svc: dict[str, Any]) -> dict[str, str]:
    """container path -> source for the volumes."""
    out = {}
    for vol in svc.get("volumes") or []:
        if isinstance(vol, dict):
            out[vol["target"]] = vol.get("source", "")
        else:
            source, _, rest = str(vol).partition(":")
            out[rest.split(":")[0]] = source
    return out


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def host_of(address: str) -> str:
    return address.rsplit(":", 1)[0]


by_name = pytest.mark.parametrize("spec", SERVICES, ids=[s.name for s in SERVICES])


# --------------------------------------------------------------------------
# The catalog against DESIGN.md.


def design_addresses(text: str) -> dict[str, dict[str, str]]:
    section = text.split("## Defaults and addresses", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|") for line in section.splitlines() if line.strip()[:1] == "|"]
    header = [c.strip() for c in rows[0].split("|")]
    table = [dict(zip(header, (c.strip() for c in r.split("|")), strict=True)) for r in rows[2:]]
    return {row["service"]: row for row in table}


@pytest.mark.skipif(not DESIGN_MD.exists(), reason=f"{DESIGN_MD} is not here to compare with")
@by_name
def test_catalog_matches_design_table(spec: ServiceSpec) -> None:
    table = design_addresses(DESIGN_MD.read_text())
    assert spec.name in table, f"DESIGN.md's address table has no row for {spec.name}"
    assert table[spec.name]["default address"] == spec.default_address
    assert table[spec.name]["env override"] == spec.address_env


def readme_defaults(text: str) -> dict[str, str]:
    """`MM_...` -> default from the README's configuration table."""
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    defaults = {}
    for line in section.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].startswith("MM_"):
            defaults[cells[0]] = cells[1]
    return defaults


@by_name
def test_catalog_matches_readme_configuration(spec: ServiceSpec) -> None:
    # The README is what users configure from; it travels with every clone,
    # unlike DESIGN.md.
    defaults = readme_defaults((REPO / "README.md").read_text())
    assert defaults.get(spec.address_env) == spec.default_address
    assert defaults.get(spec.metrics_port_env) == str(spec.default_metrics_port)


# --------------------------------------------------------------------------
# One compose service per catalog service, configured from the catalog.


@by_name
def test_compose_runs_the_catalog_module(compose: dict[str, Any], spec: ServiceSpec) -> None:
    svc = service(compose, spec.name)
    assert svc.get("command") == ["python", "-m", spec.module]


@by_name
def test_compose_serves_grpc_on_the_default_port(
    compose: dict[str, Any], spec: ServiceSpec
) -> None:
    svc = service(compose, spec.name)
    # 0.0.0.0: a container's loopback is not reachable through a port mapping.
    assert env_of(svc).get(spec.address_env) == f"0.0.0.0:{spec.default_port}"
    ports = published(svc)
    assert spec.default_port in ports, f"{spec.name}: gRPC port {spec.default_port} unpublished"
    assert ports[spec.default_port][1] == spec.default_port


@by_name
def test_compose_publishes_the_metrics_port(compose: dict[str, Any], spec: ServiceSpec) -> None:
    svc = service(compose, spec.name)
    assert env_of(svc).get(spec.metrics_port_env) == str(spec.default_metrics_port)
    ports = published(svc)
    assert spec.default_metrics_port in ports, f"{spec.name}: metrics port unpublished"
    assert ports[spec.default_metrics_port][1] == spec.default_metrics_port


@by_name
def test_compose_keeps_data_on_a_named_volume(compose: dict[str, Any], spec: ServiceSpec) -> None:
    svc = service(compose, spec.name)
    data_dir = env_of(svc).get("MM_DATA_DIR")
    assert data_dir, f"{spec.name}: MM_DATA_DIR is not set"
    source = mounts(svc).get(data_dir)
    assert source, f"{spec.name}: nothing is mounted at MM_DATA_DIR={data_dir}"
    assert source in (compose.get("volumes") or {}), f"{source!r} is not a named volume"
    sharing = [
        name
        for name, other in compose["services"].items()
        if name != spec.name and source in mounts(other).values()
    ]
    assert not sharing, f"{spec.name}'s data volume is also mounted by {sharing}"


@by_name
def test_compose_healthcheck_asks_grpc_health(
    compose: dict[str, Any], spec: ServiceSpec, healthcheck_script: tuple[str, str]
) -> None:
    svc = service(compose, spec.name)
    test = (svc.get("healthcheck") or {}).get("test")
    script_path, _ = healthcheck_script
    assert isinstance(test, list) and test[:3] == ["CMD", "python", script_path], test
    address, full_name = test[3:]
    assert host_of(address) in ("127.0.0.1", "localhost"), address
    assert port_of(address) == spec.default_port
    assert port_of(address) == port_of(env_of(svc)[spec.address_env])
    assert full_name == spec.grpc_full_name


@by_name
def test_compose_database_url_points_at_postgres(
    compose: dict[str, Any], spec: ServiceSpec
) -> None:
    url = urlsplit(env_of(service(compose, spec.name)).get("MM_DATABASE_URL", ""))
    pg_env = env_of(service(compose, "postgres"))
    assert url.scheme == "postgresql"
    assert (url.hostname, url.port) == ("postgres", 5432)
    assert url.username == pg_env["POSTGRES_USER"]
    assert url.path == "/" + pg_env["POSTGRES_DB"]


@by_name
def test_compose_builds_the_suite_image(compose: dict[str, Any], spec: ServiceSpec) -> None:
    build = service(compose, spec.name).get("build")
    assert build, f"{spec.name}: no build section"
    if isinstance(build, str):
        build = {"context": build}
    assert (REPO / build.get("context", ".")).resolve() == REPO
    assert build.get("dockerfile", "Dockerfile") == "Dockerfile"


@by_name
def test_compose_starts_after_what_it_needs(compose: dict[str, Any], spec: ServiceSpec) -> None:
    assert spec.name in DEPENDENCIES, (
        f"say in DEPENDENCIES (tests/test_compose.py) which services {spec.name} needs"
    )
    svc = service(compose, spec.name)
    depends_on = svc.get("depends_on") or {}
    catalog = {s.name: s for s in SERVICES}
    for needed in DEPENDENCIES[spec.name]:
        assert isinstance(depends_on, dict) and needed in depends_on, (
            f"{spec.name} must depend_on {needed}"
        )
        assert depends_on[needed].get("condition") == "service_healthy"
        if needed in catalog:
            dep = catalog[needed]  # dialled by its compose name, not 127.0.0.1
            assert env_of(svc).get(dep.address_env) == f"{needed}:{dep.default_port}"


def test_compose_has_no_service_the_catalog_lacks(compose: dict[str, Any]) -> None:
    unknown = set(compose["services"]) - {s.name for s in SERVICES} - NON_CATALOG_SERVICES
    assert not unknown, f"docker-compose.yml runs services the catalog lacks: {unknown}"


def test_compose_waits_only_for_healthy_services(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        depends_on = svc.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for needed, how in depends_on.items():
            assert (how or {}).get("condition") == "service_healthy", f"{name} -> {needed}"
            assert "healthcheck" in service(compose, needed), f"{needed} has no healthcheck"


def test_compose_host_ports_are_unique(compose: dict[str, Any]) -> None:
    host_ports = [p for svc in compose["services"].values() for _, p in published(svc).values()]
    assert len(host_ports) == len(set(host_ports)), sorted(host_ports)


def test_compose_postgres(compose: dict[str, Any]) -> None:
    pg = service(compose, "postgres")
    assert pg.get("image") == POSTGRES_IMAGE
    test = (pg.get("healthcheck") or {}).get("test") or []
    assert "pg_isready" in " ".join(test)
    source = mounts(pg).get("/var/lib/postgresql/data")
    assert source in (compose.get("volumes") or {}), "postgres data needs a named volume"


# --------------------------------------------------------------------------
# Dockerfile: builder.


def test_dockerfile_bases_are_pinned(stages: list[Stage], builder: Stage, runtime: Stage) -> None:
    names = {s.name for s in stages}
    for stage in stages:
        if stage.base in names:
            continue
        _, _, tag = stage.base.rpartition(":")
        assert "/" not in tag and tag not in ("", "latest"), f"unpinned base {stage.base}"
    # A venv links to its interpreter by path: it moves only between equal bases.
    assert builder.base == runtime.base == PYTHON_IMAGE
    python = re.match(r"python:(\d+\.\d+)", runtime.base)
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python and SpecifierSet(requires).contains(python[1] + ".0")


def test_dockerfile_uv_matches_makefile(builder: Stage) -> None:
    make = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", (REPO / "Makefile").read_text(), re.M)
    assert make, "Makefile has no UV_VERSION"
    assert builder.arg_defaults().get("UV_VERSION") == make[1]
    runs = [c for ins in builder.all("RUN") for c in commands(ins)]
    assert any(re.search(r"install\b.*\buv==\$\{?UV_VERSION\}?", c) for c in runs)


def test_dockerfile_pins_a_minimal_rust_toolchain(builder: Stage) -> None:
    pinned = builder.arg_defaults().get("RUST_VERSION", "")
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), f"RUST_VERSION={pinned!r}"
    cargo = tomllib.loads((REPO / "core_rs" / "Cargo.toml").read_text())
    assert Version(pinned) >= Version(cargo["package"]["rust-version"])
    rustup = [c for ins in builder.all("RUN") for c in commands(ins) if "--default-toolchain" in c]
    assert len(rustup) == 1, rustup
    assert "--profile minimal" in rustup[0]
    assert re.search(r"--default-toolchain \"?\$\{?RUST_VERSION\}?\"?", rustup[0])


def test_dockerfile_installs_locked_deps_with_hashes(
    builder: Stage, venv: str, lock_subset_script: tuple[str, str]
) -> None:
    script, _ = lock_subset_script
    runs = [c for ins in builder.all("RUN") for c in commands(ins)]
    runtime_req = next(
        (
            c.split(">")[1].strip()
            for c in runs
            if c.startswith(f"python {script} requirements.lock pyproject.toml >")
        ),
        None,
    )
    assert runtime_req, "the runtime requirements should come from lock_subset of pyproject"
    syncs = [c for c in runs if c.startswith("uv pip sync") and f"--python {venv}/bin/python" in c]
    assert len(syncs) == 1, syncs
    assert "--require-hashes" in syncs[0] and "--strict" in syncs[0]
    assert syncs[0].endswith(f" {runtime_req}")
    copied = {src for c in copies(builder) for src in c.sources}
    assert {"requirements.lock", "pyproject.toml"} <= copied


def installed_closure(roots: Iterable[str]) -> set[str]:
    """Names needed by roots (requirement strings, extras honoured), from the
    dev venv's metadata (synced from the lock)."""
    seen: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = []
    for root in roots:
        req = Requirement(root)
        todo += [(norm(req.name), extra) for extra in ("", *sorted(req.extras))]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        for text in importlib.metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": extra}):
                todo += [(norm(req.name), e) for e in ("", *sorted(req.extras))]
    return {name for name, _ in seen}


def run_lock_subset(script: str, tmp_path: Path, *roots: str) -> dict[str, list[str]]:
    path = tmp_path / "lock_subset.py"
    path.write_text(script)
    out = subprocess.run(
        [sys.executable, str(path), "requirements.lock", *roots],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    pins: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        if not line[:1].isspace():
            pins[norm(re.split(r"[=<>!~;\[ ]", line, maxsplit=1)[0])] = [line]
        else:
            pins[list(pins)[-1]].append(line)
    return pins


def test_lock_subset_keeps_exactly_the_runtime_closure(
    lock_subset_script: tuple[str, str], tmp_path: Path
) -> None:
    _, script = lock_subset_script
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    roots = list(pyproject["project"]["dependencies"])
    pins = run_lock_subset(script, tmp_path, "pyproject.toml")
    assert set(pins) == installed_closure(roots)
    assert not set(pins) & DEV_ONLY
    lock_lines = set((REPO / "requirements.lock").read_text().splitlines())
    for name, lines in pins.items():
        assert all(line in lock_lines for line in lines), f"{name}: pins must be copied as is"
        assert any("--hash=sha256:" in line for line in lines[1:]), f"{name}: no hashes"
        assert lines[-1].rstrip()[-1:] != "\\", f"{name}: a dangling line continuation"

    tools = run_lock_subset(script, tmp_path, "grpcio-tools", "maturin")
    assert set(tools) == installed_closure(["grpcio-tools", "maturin"])


def test_dockerfile_builds_core_rs_with_maturin(builder: Stage, venv: str) -> None:
    pyproject = tomllib.loads((REPO / "core_rs" / "pyproject.toml").read_text())
    assert "python" in pyproject["tool"]["maturin"]["features"]
    crate = next(c.dest for c in copies(builder) if c.sources == ["core_rs/"])
    built = installed = False
    for ins in builder.all("RUN"):
        cwd = ins.workdir
        wheels = ""
        for cmd in commands(ins):
            if cmd.startswith("cd "):
                cwd = posixpath.join(cwd, cmd[3:].strip())
            elif re.search(r"\bmaturin build\b", cmd):
                assert cwd == crate, f"maturin build runs in {cwd}, the crate is at {crate}"
                assert "--release" in cmd and "--locked" in cmd
                assert f"--interpreter {venv}/bin/python" in cmd
                wheels = re.search(r"--out (\S+)", cmd)[1]
                built = True
            elif wheels and cmd.startswith("uv pip install"):
                assert f"--python {venv}/bin/python" in cmd
                assert f"{wheels}/core_rs-" in cmd
                installed = True
    assert built, "no `maturin build` of core_rs in the builder"
    assert installed, "the core_rs wheel is not installed into the runtime venv"


def test_dockerfile_generates_stubs_like_the_makefile(builder: Stage, runtime: Stage) -> None:
    makefile = (REPO / "Makefile").read_text()
    gen = re.search(r"^GEN\s*:?=\s*(\S+)", makefile, re.M)[1]
    make_args = re.search(r"-m grpc_tools\.protoc (.*)$", makefile, re.M)[1]
    expected = [a.replace("$(GEN)", gen) for a in make_args.split() if a != "$(PROTOS)"]
    runs = [(ins, c) for ins in builder.all("RUN") for c in commands(ins)]
    protoc = [(ins, c) for ins, c in runs if "-m grpc_tools.protoc" in c]
    assert len(protoc) == 1, "the builder should run grpc_tools.protoc once"
    ins, cmd = protoc[0]
    args = cmd.split("-m grpc_tools.protoc", 1)[1].split()
    assert args[: len(expected)] == expected
    assert " ".join(args[len(expected) :]) == "$(find proto -name '*.proto')"
    assert any(c == f"rm -rf {gen}" for i, c in runs if i is ins)
    assert any(c == f"find {gen} -type d -exec touch {{}}/__init__.py \\;" for _, c in runs)
    dests = {c.sources[0]: c.dest for c in copies(builder) if c.sources}
    assert dests.get("proto/") == posixpath.join(ins.workdir, "proto")
    assert dests.get("services/") == posixpath.join(ins.workdir, "services")
    services_src = posixpath.join(ins.workdir, "services")
    assert any(services_src in c.sources for c in copies(runtime)), "stubs not in the image"


# --------------------------------------------------------------------------
# Dockerfile: runtime.


def test_runtime_copies_only_the_venv_and_services(
    builder: Stage, runtime: Stage, venv: str, healthcheck_script: tuple[str, str]
) -> None:
    copied = []
    for c in copies(runtime):
        if c.heredoc is not None:
            assert c.dest == healthcheck_script[0], f"unexpected script {c.dest}"
            continue
        assert c.from_stage == builder.name, f"runtime copies {c.sources} from the build context"
        copied += [(src.rstrip("/"), c.dest) for src in c.sources]
    built_services = next(c.dest for c in copies(builder) if c.sources == ["services/"])
    assert sorted(src for src, _ in copied) == sorted([venv, built_services])
    assert dict(copied)[venv] == venv, "a venv only works at the path it was made at"
    services = dict(copied)[built_services]
    toolchain = re.compile(r"\b(apt-get install|rustup|cargo|maturin|uv pip|pip install|gcc)\b")
    for ins in runtime.all("RUN"):
        assert not toolchain.search(ins.args), f"runtime stage builds: {ins.args}"
    # `python -m services.<name>` resolves from the parent of services/.
    parent = posixpath.dirname(services)
    assert runtime.env().get("PYTHONPATH") == parent or runtime.all("WORKDIR")[-1].args == parent


def test_runtime_runs_as_non_root(runtime: Stage) -> None:
    users = runtime.all("USER")
    assert users, "the runtime stage runs as root"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0"), f"USER {users[-1].args}"
    assert runtime.instructions.index(users[-1]) > max(
        (runtime.instructions.index(i) for i in runtime.all("RUN")), default=-1
    )


def test_runtime_environment_and_data_volume(runtime: Stage) -> None:
    env = runtime.env()
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("MM_LOG_FORMAT") == "json"
    assert env.get("MM_DATA_DIR") == "/data"
    volumes = [v for ins in runtime.all("VOLUME") for v in exec_form(ins.args)]
    assert "/data" in volumes
    # The non-root user must own the data directory the volume starts from.
    assert any(
        re.search(r"\bchown \S+ /data\b", c) for i in runtime.all("RUN") for c in commands(i)
    )


def test_runtime_healthcheck_and_command(
    runtime: Stage, healthcheck_script: tuple[str, str]
) -> None:
    checks = runtime.all("HEALTHCHECK")
    assert len(checks) == 1, "the runtime stage needs one HEALTHCHECK"
    _, _, cmd = checks[0].args.partition("CMD ")
    assert exec_form(cmd) == ["python", healthcheck_script[0]]
    (cmd_ins,) = runtime.all("CMD")
    command = exec_form(cmd_ins.args)
    modules = {"services.launcher"} | {s.module for s in SERVICES}
    assert command[:2] == ["python", "-m"] and command[2] in modules, command


# --------------------------------------------------------------------------
# The healthcheck script, run against a real grpc.health.v1 server.


@pytest.fixture
def health_server() -> Iterator[tuple[str, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)


def run_healthcheck(
    script: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> int:
    path = tmp_path / "healthcheck.py"
    path.write_text(script)
    base = {k: v for k, v in os.environ.items() if not k.startswith("MM_")}
    out = subprocess.run(
        [sys.executable, str(path), *args],
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode in (0, 1), out.stderr  # docker reserves other codes
    return out.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@by_name
def test_compose_healthcheck_passes_only_when_serving(
    compose: dict[str, Any],
    spec: ServiceSpec,
    healthcheck_script: tuple[str, str],
    health_server: tuple[str, health.HealthServicer],
    tmp_path: Path,
) -> None:
    _, script = healthcheck_script
    address, servicer = health_server
    _, full_name = service(compose, spec.name)["healthcheck"]["test"][3:]
    servicer.set(full_name, SERVING)
    assert run_healthcheck(script, tmp_path, address, full_name) == 0
    servicer.set(full_name, NOT_SERVING)
    assert run_healthcheck(script, tmp_path, address, full_name) == 1
    assert run_healthcheck(script, tmp_path, address, "marketmesh.v1.Unknown") == 1
    assert run_healthcheck(script, tmp_path, f"127.0.0.1:{free_port()}", full_name) == 1


def test_image_healthcheck_checks_every_service(
    healthcheck_script: tuple[str, str],
    health_server: tuple[str, health.HealthServicer],
    tmp_path: Path,
) -> None:
    # Without arguments (and PID 1 not a catalog module, as here) the script
    # checks every catalog service on 127.0.0.1 at its address variable's port.
    _, script = healthcheck_script
    address, servicer = health_server
    env = {s.address_env: f"0.0.0.0:{port_of(address)}" for s in SERVICES}
    for spec in SERVICES:
        servicer.set(spec.grpc_full_name, SERVING)
    assert run_healthcheck(script, tmp_path, env=env) == 0
    servicer.set(SERVICES[-1].grpc_full_name, NOT_SERVING)
    assert run_healthcheck(script, tmp_path, env=env) == 1


# --------------------------------------------------------------------------
# .dockerignore, with Docker's rules: last matching pattern wins, and a
# pattern that matches a directory matches everything under it.


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(path: str) -> bool:
    rules = []
    for raw in (REPO / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            pattern = posixpath.normpath(line.lstrip("!").strip()).lstrip("/")
            rules.append((negate, _glob_regex(pattern)))
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    ignored = False
    for negate, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            ignored = not negate
    return ignored


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        "core_rs/target/CACHEDIR.TAG",
        "var/pricing.sqlite3",
        "bin/ghz",
        ".git/HEAD",
        "services/common/gen/marketmesh/v1/pricing_pb2.py",
        "core_rs/python/core_rs/_core.abi3.so",
        "services/pricing/__pycache__/server.cpython-311.pyc",
    ],
)
def test_dockerignore_excludes_local_state(path: str) -> None:
    assert dockerignored(path), f".dockerignore lets {path} into the build context"


def test_dockerignore_keeps_what_the_build_copies(builder: Stage) -> None:
    sources = [src for c in copies(builder) for src in c.sources]
    assert sources, "the builder copies nothing from the context"
    skip = re.compile(r"(^|/)(target|__pycache__|gen)(/|$)|\.so$")
    for src in sources:
        root = REPO / src
        assert root.exists(), f"COPY {src}: not in the repo"
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for file in files:
            rel = file.relative_to(REPO).as_posix()
            if not skip.search(rel):
                assert not dockerignored(rel), f".dockerignore drops {rel}, which COPY {src} needs"
