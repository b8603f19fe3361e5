"""The production stack in docker/, checked statically (no Docker engine runs here): the compose file
parses and has every promised service with health checks, volumes, non-root users, loopback-only
published ports and no inline secrets; the Dockerfiles run as a non-root user, have a health check,
pinned base images, copy every package, and start real ``candleflow`` subcommands."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile*[!e]"))  # Dockerfile, Dockerfile.cuda, ... (not the .dockerignore files)
SERVICES = {"kafka", "redis", "timescaledb", "weaviate", "worker", "retrain-worker", "dashboard"}
CANDLEFLOW_SERVICES = {"train", "worker", "dashboard", "retrain-worker"}
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|API_KEY|PRIVATE_KEY|CREDENTIAL", re.I)
INTERPOLATION = re.compile(r"\$\{[A-Z_][A-Z0-9_]*(?:(?::?[-?+])[^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to parse docker/compose.yaml (add pyyaml to the dev extra)")
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def subcommands() -> set[str]:
    """The subcommands `candleflow --help` lists."""
    out = subprocess.run([sys.executable, "-m", "candleflow", "--help"], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout
    listing = out.split("Commands:", 1)[1]
    return {line.split()[0] for line in listing.splitlines() if line.startswith("  ") and line.split()}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(l for l in path.read_text().splitlines() if not l.lstrip().startswith("#")))
    return [(parts[0].upper(), parts[1] if len(parts) > 1 else "") for line in text.splitlines()
            if (parts := line.strip().split(None, 1))]


def pinned(image: str) -> bool:
    """A tag with a version (digits, not latest) or a digest."""
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and tag != "latest" and bool(re.search(r"\d+\.\d+\.\d+", tag))  # a patch release, not a moving minor tag


def not_root(user: str | None) -> bool:
    return bool(user) and user.split(":")[0].strip() not in ("root", "0")


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


# ---------------------------------------------------------------- compose

def test_compose_has_every_promised_service(compose):
    services = compose["services"]
    assert SERVICES <= services.keys(), SERVICES - services.keys()
    kafka = environment(services["kafka"])
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"] and not any("ZOOKEEPER" in k for k in kafka), "Kafka in KRaft mode"
    assert "replicas" in services["worker"].get("deploy", {}), "the number of candle workers is configurable"
    assert services["retrain-worker"]["command"] == ["retrain-worker"]


def test_compose_health_checks_and_volumes(compose):
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        if service.get("restart") == "no":  # one-shot jobs
            continue
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    for name in ("kafka", "redis", "timescaledb", "weaviate", "worker"):
        mounts = [v.split(":")[0] for v in compose["services"][name].get("volumes", []) if isinstance(v, str)]
        assert any(m in declared for m in mounts), f"{name} keeps its state in no named volume"


def test_compose_services_run_as_non_root(compose):
    for name, service in compose["services"].items():
        assert not_root(str(service.get("user", ""))), f"{name} does not set a non-root user"


def test_compose_publishes_ports_on_loopback_only(compose):
    published = 0
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond 127.0.0.1"
    assert published, "the dashboard should be reachable from the host"


def test_compose_has_no_inline_secrets(compose):
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            literal = INTERPOLATION.sub("", value)
            if SECRET_NAME.search(key):
                assert not literal.strip(), f"{name}: {key} holds a literal secret; use ${{VARIABLE}} from .env"
            userinfo = re.search(r"://([^/@\s]*)@", value)
            if userinfo and ":" in userinfo.group(1):
                password = userinfo.group(1).split(":", 1)[1]
                assert INTERPOLATION.fullmatch(password), f"{name}: {key} has an inline password in its URL"


def test_no_secret_on_a_command_line_and_no_anonymous_store(compose):
    """A secret in a process's arguments is readable by every process of the host (ps, /proc/*/cmdline):
    commands may only hand secrets on through files or the environment. Weaviate takes a key, not anyone."""
    secrets = {k for service in compose["services"].values() for k in environment(service) if SECRET_NAME.search(k)}
    for name, service in compose["services"].items():
        command = service.get("command") or []
        words = command if isinstance(command, list) else command.split()
        for word in words:
            for flag in ("--requirepass", "--password", "--pass "):
                assert flag not in word, f"{name}: a secret passed on the command line ({flag.strip()})"
            launched = word.split("> ", 1)[0] if "printf" in word else word  # printf is the shell's builtin
            if "exec " in launched:
                launched = launched.split("exec ", 1)[1]
                assert not any(f"${secret}" in launched or f"$${secret}" in launched for secret in secrets), \
                    f"{name}: the process started gets a secret in its arguments"
    weaviate = environment(compose["services"]["weaviate"])
    assert weaviate["AUTHENTICATION_ANONYMOUS_ACCESS_ENABLED"] == "false"
    assert weaviate["AUTHENTICATION_APIKEY_ENABLED"] == "true" and INTERPOLATION.fullmatch(weaviate["AUTHENTICATION_APIKEY_ALLOWED_KEYS"])
    assert "CANDLEFLOW_WEAVIATE_API_KEY" in environment(compose["services"]["worker"])


def test_env_example_holds_no_secret_and_env_is_ignored():
    example = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines()
                   if line.strip() and not line.startswith("#"))
    secrets = {k: v for k, v in example.items() if SECRET_NAME.search(k)}
    assert secrets and not any(v.strip() for v in secrets.values()), secrets
    assert ".env" in (DOCKER / ".gitignore").read_text().split()


def test_compose_commands_are_real_subcommands(compose, subcommands):
    for name in CANDLEFLOW_SERVICES:
        command = compose["services"][name]["command"]
        assert command[0] in subcommands, f"{name}: `candleflow {command[0]}` does not exist ({sorted(subcommands)})"


# ---------------------------------------------------------------- Dockerfiles

@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_user_healthcheck_and_pinned_bases(path):
    ins = instructions(path)
    stages = [args.split()[0] for op, args in ins if op == "FROM"]
    assert stages and all(pinned(image) for image in stages), f"unpinned base image in {stages}"
    last_stage = max(i for i, (op, _) in enumerate(ins) if op == "FROM")
    users = [args for op, args in ins[last_stage:] if op == "USER"]
    assert users and not_root(users[-1]), f"{path.name}: the final stage runs as {users[-1:] or 'root'}"
    checks = [args for op, args in ins[last_stage:] if op == "HEALTHCHECK"]
    assert checks and "NONE" not in checks[-1].upper(), f"{path.name} has no HEALTHCHECK"


@pytest.mark.parametrize("path", [p for p in DOCKERFILES if "weaviate" not in p.name], ids=lambda p: p.name)
def test_candleflow_images_copy_every_package_and_run_real_subcommands(path, subcommands):
    ins = instructions(path)
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {args.split()[0].rstrip("/") for op, args in ins if op == "COPY" and not args.startswith("--from")}
    missing = {p.rstrip("*") for p in packages} - copied
    assert not missing, f"{path.name} does not copy {sorted(missing)} (the installed package would lack them)"
    cmd = [args for op, args in ins if op == "CMD"][-1]
    words = shlex.split(cmd.strip("[]").replace(",", " "))
    assert words[0] in subcommands, f"CMD {cmd} is not a candleflow subcommand"
    entrypoint = [args for op, args in ins if op == "ENTRYPOINT"][-1]
    script = (DOCKER / "entrypoint.sh").read_text()
    assert "candleflow-entrypoint" in entrypoint and 'exec candleflow "$@"' in script


def test_cuda_image_uses_the_gpu_runtime():
    ins = instructions(DOCKER / "Dockerfile.cuda")
    bases = [args.split()[0] for op, args in ins if op == "FROM"]
    assert all(b.startswith("nvidia/cuda:") for b in bases) and "runtime" in bases[-1]
    runs = " ".join(args for op, args in ins if op == "RUN")
    assert '".[gpu]"' in runs and "uninstall -y onnxruntime" in runs and "onnxruntime-gpu" in runs
