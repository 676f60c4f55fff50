"""The container image, checked without a Docker engine (CI has none).

A lint of the Dockerfile for what the deployment relies on (multi-stage, no build tools
and no network installs in the final stage, a fixed non-root user that matches the pods'
securityContext, the ports the manifests declare), and a build of the wheel from exactly
the files the Dockerfile copies, imported from outside the repository: the image's
`pip install .` gets every module the two entry points need.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "-dev ", "-dev\n", "libgmp-dev")


@dataclass
class Instruction:
    op: str
    args: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]

    def ops(self, op: str) -> list[str]:
        return [i.args for i in self.instructions if i.op == op]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages of a Dockerfile (continuations joined)."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    assert not pending, "dangling line continuation"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        op, _, rest = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name, []))
        elif not stages and op == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
        else:
            assert stages, f"{op} before the first FROM"
            stages[-1].instructions.append(Instruction(op, rest))
    return args, stages


ARGS, STAGES = parse(DOCKERFILE.read_text())
FINAL = STAGES[-1]


def manifests() -> list[dict[str, object]]:
    docs = []
    for path in sorted((ROOT / "statefulset").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def pod_containers() -> list[dict[str, object]]:
    out = []
    for doc in manifests():
        if doc.get("kind") in ("StatefulSet", "Deployment"):
            spec = doc["spec"]["template"]["spec"]  # type: ignore[index]
            out.append((spec, spec["containers"][0]))  # type: ignore[index]
    return out  # type: ignore[return-value]


def test_multi_stage_with_a_pinned_base() -> None:
    assert len(STAGES) >= 2
    assert STAGES[0].name, "the build stage is named, so the final stage copies from it"
    for stage in STAGES:
        base = stage.base
        for key, value in ARGS.items():
            base = base.replace("${" + key + "}", value).replace("$" + key, value)
        assert ":" in base and not base.endswith(":latest"), f"unpinned base image {base}"
        assert "python:3.11" in base, "the image runs the Python the project supports"


def test_final_stage_has_no_build_tools_and_no_network_installs() -> None:
    for command in FINAL.ops("RUN"):
        assert "apt-get install" not in command and "apk add" not in command, command
        assert "pip install" not in command, "the final stage gets the built venv, not PyPI"
        for tool in BUILD_TOOLS:
            assert tool not in command + "\n", command
    copies = FINAL.ops("COPY")
    assert copies, "the final stage copies the built virtualenv"
    for copy in copies:
        assert copy.startswith(f"--from={STAGES[0].name} "), f"final stage copies {copy}"
    assert not FINAL.ops("ADD")
    # The build stage really is where the compilers are.
    assert any("build-essential" in c for c in STAGES[0].ops("RUN"))


def test_runs_as_the_non_root_user_of_the_manifests() -> None:
    (user,) = FINAL.ops("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric non-root uid (runAsNonRoot needs it)"
    assert gid.isdigit() and int(gid) != 0
    # The USER is the last word: nothing after it runs as someone else.
    assert [i.op for i in FINAL.instructions].index("USER") > max(
        n for n, i in enumerate(FINAL.instructions) if i.op in ("RUN", "COPY")
    )
    for spec, _ in pod_containers():
        context = spec["securityContext"]  # type: ignore[index]
        assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid))  # type: ignore[index]


def test_ports_and_commands_match_the_manifests() -> None:
    (exposed,) = FINAL.ops("EXPOSE")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for _, c in pod_containers():
        ports = {p["containerPort"] for p in c["ports"]}  # type: ignore[index]
        assert ports == {int(p) for p in exposed.split()}
        assert c["command"][0] in scripts  # type: ignore[index]
    cmd = FINAL.ops("CMD")[0]
    assert re.match(r'\["mpc-node", "--config", "[^"]+"\]', cmd)


def test_dockerignore_admits_only_the_copied_sources() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "**", "everything is excluded first"
    admitted = {line[1:].removesuffix("/**") for line in lines if line.startswith("!")}
    copied = set()
    for copy in STAGES[0].ops("COPY"):
        copied |= set(copy.split()[:-1])
    assert admitted == copied, "the context holds what the build copies and nothing else"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project wheel built from exactly the files the build stage copies."""
    tmp = tmp_path_factory.mktemp("image")
    source = tmp / "src"
    source.mkdir()
    for copy in STAGES[0].ops("COPY"):
        for name in copy.split()[:-1]:
            path = ROOT / name
            if path.is_dir():
                shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, source / name)
    wheels = tmp / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (built,) = wheels.glob("*.whl")
    return built


def test_the_copied_sources_build_a_complete_wheel(wheel: Path, tmp_path: Path) -> None:
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(unpacked)
        names = archive.namelist()
    assert "protos/mpc/v1/node_pb2.py" in names
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = (unpacked / entry_points).read_text()
    for script in ("mpc-node", "mpc-coordinator", "mpcctl"):
        assert f"{script} =" in text


def test_the_image_venv_runs_with_only_the_declared_dependencies(
    wheel: Path, tmp_path: Path
) -> None:
    """What the build stage does (a fresh venv, `pip install` of the project with its
    runtime dependencies from PyPI, none of the test extras) and then what the pods run:
    every entry point starts and the servers' modules import from the venv, not the repo.
    A runtime import missing from `dependencies` fails here, not in a pod."""
    venv = tmp_path / "opt-mpc"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [
            str(venv / "bin/python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    clean_env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    for script in ("mpc-node", "mpc-coordinator", "mpcctl"):
        result = subprocess.run(
            [str(venv / "bin" / script), "--help"],
            cwd=tmp_path,
            env=clean_env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0 and "usage" in result.stdout, script + result.stderr
    probe = (
        "import sys, mpcnode.server, mpcnode.workers, coordinator.server, coordinator.cli;"
        "import mpcnode.metrics, mpcnode.logs;"
        "mods = [mpcnode.server, coordinator.server, coordinator.cli];"
        "bad = [m.__file__ for m in mods if not m.__file__.startswith(sys.prefix)];"
        "sys.exit(repr(bad) if bad else 0)"
    )
    result = subprocess.run(
        [str(venv / "bin/python"), "-c", probe],
        cwd=tmp_path,
        env=clean_env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    test_only = subprocess.run(
        [str(venv / "bin/python"), "-c", "import pytest"],
        cwd=tmp_path,
        env=clean_env,
        capture_output=True,
    )
    assert test_only.returncode != 0, "the image must not carry the test dependencies"
