"""The sidecar's image (examples/image/Dockerfile), checked without a container engine (none runs
where the tests do): its bases are official Python images, everything it copies is in the
repository and in the build context, the files its build stage copies make an installable wheel
with the rule packs and dashboards, it runs as a non-root user, and its command is a real
``monitor`` subcommand with real options on a config that passes ``monitor config check``. The
manifests name the image its documented build command tags. Nothing here builds the image."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import click
import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from tests.conftest import REPO_ROOT

IMAGE_DIR = REPO_ROOT / "examples" / "image"
DOCKERFILE = IMAGE_DIR / "Dockerfile"
OFFICIAL_PYTHON = re.compile(r"^(docker\.io/)?(library/)?python:3\.\d+(\.\d+)?-slim(-[a-z]+)?$")


@dataclass(frozen=True)
class Instruction:
    name: str
    value: str
    stage: int  # index of the FROM this instruction belongs to


def parse_dockerfile(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped, continuation lines joined."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        name, _, value = full.partition(" ")
        name = name.upper()
        if name == "FROM":
            stage += 1
        out.append(Instruction(name, value.strip(), stage))
    assert not pending, f"{path}: the last instruction ends with a line continuation"
    return out


def exec_form(instr: Instruction) -> list[str]:
    value = json.loads(instr.value)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), \
        f"{instr.name} must be in exec form (a JSON array of strings) so that SIGTERM reaches monitor serve: {instr.value}"
    return value


def copy_args(instr: Instruction) -> tuple[dict[str, str], list[str], str]:
    """``(flags, sources, destination)`` of a COPY instruction (shell form)."""
    words = shlex.split(instr.value)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, val = words.pop(0)[2:].partition("=")
        flags[key] = val
    assert len(words) >= 2, f"COPY needs a source and a destination: {instr.value}"
    return flags, words[:-1], words[-1]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Whether a path of the build context is left out by these .dockerignore patterns (the last
    matching pattern wins; ``!`` re-includes; a pattern matches a path or any of its parents)."""
    parts = PurePosixPath(rel).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat[1:] if negate else pat
        pat = pat.rstrip("/")
        matched = any(fnmatch.fnmatchcase(c, pat) or (pat.startswith("**/") and
                      fnmatch.fnmatchcase(c.split("/")[-1], pat[3:])) for c in candidates)
        if matched:
            result = not negate
    return result


def dockerignore_patterns() -> list[str]:
    path = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore")
    assert path.is_file(), f"{path} (BuildKit's ignore file for this Dockerfile) is missing: the build would send .venv/ too"
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]


def context_files(source: str, patterns: list[str]) -> list[Path]:
    """The files of a COPY source (relative to the repository's root, the build context) that
    reach the build."""
    base = REPO_ROOT / source
    files = [base] if base.is_file() else [p for p in sorted(base.rglob("*")) if p.is_file()]
    return [p for p in files if not ignored(p.relative_to(REPO_ROOT).as_posix(), patterns)]


def build_command() -> tuple[str, str, str]:
    """``(dockerfile, tag, context)`` of the ``docker build`` command the Dockerfile documents."""
    match = re.search(r"docker build -f (\S+) -t (\S+) (\S+)\s*$", DOCKERFILE.read_text(), re.M)
    assert match, f"{DOCKERFILE} must document its build command (docker build -f ... -t ... .)"
    return match.group(1), match.group(2), match.group(3)


def cli_command(args: list[str]) -> tuple[click.Command, list[str]]:
    """The ``monitor`` subcommand that ``args`` name (walking the groups), and the remaining words."""
    cmd: click.Command = main
    ctx = click.Context(main)
    rest = list(args)
    while rest and isinstance(cmd, click.Group):
        sub = cmd.get_command(ctx, rest[0])
        assert sub is not None, f"'monitor {' '.join(args)}': {rest[0]!r} is no subcommand of {cmd.name!r}"
        cmd, rest = sub, rest[1:]
    return cmd, rest


def check_cli_args(args: list[str]) -> click.Command:
    """``monitor ARGS`` names a real subcommand, every option it passes is one of that command's,
    and click accepts the words (``--help`` appended, so that nothing runs)."""
    cmd, rest = cli_command(args)
    known = {opt for p in cmd.params if isinstance(p, click.Option) for opt in (*p.opts, *p.secondary_opts)}
    for word in rest:
        if word.startswith("-"):
            assert word.split("=", 1)[0] in known, f"'monitor {' '.join(args)}': {word} is no option of {cmd.name!r} ({sorted(known)})"
    res = CliRunner().invoke(main, [*args, "--help"])
    assert res.exit_code == 0, res.output
    return cmd


# -- the Dockerfile -------------------------------------------------------------------------------
def test_every_stage_starts_from_an_official_python_image() -> None:
    froms = [i for i in parse_dockerfile(DOCKERFILE) if i.name == "FROM"]
    assert froms
    for i in froms:
        image = i.value.split()[0]
        assert OFFICIAL_PYTHON.match(image), f"FROM {image}: not an official python image (python:3.X-slim)"


def test_every_copy_source_is_in_the_repository_and_in_the_build_context() -> None:
    patterns = dockerignore_patterns()
    stages = {i.value.split()[-1] for i in parse_dockerfile(DOCKERFILE) if i.name == "FROM" and " AS " in i.value.upper()}
    copies = [i for i in parse_dockerfile(DOCKERFILE) if i.name in ("COPY", "ADD")]
    assert copies and all(i.name == "COPY" for i in copies), "ADD fetches URLs and unpacks archives: use COPY"
    from_context = 0
    for i in copies:
        flags, sources, _ = copy_args(i)
        if "from" in flags:
            assert flags["from"] in stages, f"COPY --from={flags['from']}: no build stage of that name"
            continue
        for src in sources:
            assert not src.startswith(("/", "..")), f"COPY {src}: sources are relative to the build context"
            assert (REPO_ROOT / src).exists(), f"COPY {src}: no such file or folder in the repository"
            assert context_files(src, patterns), f"COPY {src}: every file of it is excluded by the .dockerignore"
            from_context += 1
    assert from_context >= 5


def test_the_dockerignore_keeps_the_checkouts_clutter_out() -> None:
    """The context is the repository's root: .venv/ (hundreds of MB) and a stale build/ folder
    (setuptools reuses build/lib) must not reach the image."""
    patterns = dockerignore_patterns()
    for rel in (".venv/bin/python", "build/lib/monitor/core.py", "tests/conftest.py", ".git/HEAD",
                "monitor/__pycache__/core.cpython-311.pyc", "grafana/previews/monitor-agent.png"):
        assert ignored(rel, patterns), rel
    for rel in ("pyproject.toml", "monitor/core.py", "rules/core.yml", "grafana/dashboards/monitor-agent.json",
                "examples/image/monitor.yaml"):
        assert not ignored(rel, patterns), rel


def test_it_runs_as_a_non_root_user() -> None:
    instrs = parse_dockerfile(DOCKERFILE)
    last_stage = max(i.stage for i in instrs)
    users = [i.value for i in instrs if i.name == "USER" and i.stage == last_stage]
    assert users, "the final stage sets no USER: the sidecar would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0, f"USER {users[-1]}: numeric and not 0, so that runAsNonRoot can check it"
    # the user it names is created in the image, and owns the state folder
    runs = " ".join(i.value for i in instrs if i.name == "RUN" and i.stage == last_stage)
    assert re.search(rf"useradd\b[^&]*--uid {user}\b", runs), f"no useradd --uid {user} in the final stage"


def test_its_command_is_monitor_serve_on_a_config_that_passes_the_check(tmp_path: Path) -> None:
    instrs = parse_dockerfile(DOCKERFILE)
    last_stage = max(i.stage for i in instrs)
    (entry,) = [exec_form(i) for i in instrs if i.name == "ENTRYPOINT" and i.stage == last_stage]
    (cmd,) = [exec_form(i) for i in instrs if i.name == "CMD" and i.stage == last_stage]
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry == ["monitor"] and scripts["monitor"] == "monitor.cli:main"
    assert check_cli_args(cmd).name == "serve"
    config_in_image = cmd[cmd.index("--config") + 1]
    # the config is a file the image copies from the repository
    sources = {}
    for i in instrs:
        if i.name == "COPY" and i.stage == last_stage:
            flags, srcs, dest = copy_args(i)
            if "from" not in flags and len(srcs) == 1:
                sources[dest] = REPO_ROOT / srcs[0]
    assert config_in_image in sources, f"CMD reads {config_in_image}, which no COPY puts in the image"
    res = CliRunner().invoke(main, ["config", "check", str(sources[config_in_image])])
    assert res.exit_code == 0 and "SUCCESS" in res.output, res.output
    raw = yaml.safe_load(sources[config_in_image].read_text())
    assert raw["server"]["addr"] == "0.0.0.0", "in a container the sidecar must listen beyond its loopback"
    exposed = {int(p.split("/")[0]) for i in instrs if i.name == "EXPOSE" and i.stage == last_stage for p in i.value.split()}
    assert raw["server"]["port"] in exposed
    # the state folder of the default config is the image user's
    ckpt = PurePosixPath(raw["checkpoint"]["path"]).parent.as_posix()
    runs = " ".join(i.value for i in instrs if i.name == "RUN" and i.stage == last_stage)
    assert f"chown monitor:monitor {ckpt}" in runs


def test_the_documented_build_command_matches_the_file_and_the_manifests() -> None:
    dockerfile, tag, context = build_command()
    assert (REPO_ROOT / dockerfile).resolve() == DOCKERFILE.resolve() and context == "."
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert tag == f"model-monitor:{version}"
    instrs = parse_dockerfile(DOCKERFILE)
    (image_cmd,) = [exec_form(i) for i in instrs if i.name == "CMD" and i.stage == max(j.stage for j in instrs)]
    uses = 0
    for manifest in sorted((REPO_ROOT / "examples").rglob("*.yaml")):
        text = manifest.read_text()
        for doc in yaml.safe_load_all(text):
            spec = ((doc or {}).get("spec") or {}).get("template", {}).get("spec") if isinstance(doc, dict) else None
            if not spec:
                continue
            for c in spec.get("initContainers", []) + spec.get("containers", []):
                if "monitor" not in c["image"]:
                    continue
                assert c["image"] == tag, f"{manifest.name}: container {c['name']} runs {c['image']}, the build command tags {tag}"
                assert c.get("imagePullPolicy") == "IfNotPresent", f"{manifest.name}: {c['name']}: the image is loaded, not pulled"
                assert "command" not in c, f"{manifest.name}: {c['name']}: keep the image's ENTRYPOINT (monitor); pass args"
                check_cli_args(c.get("args") or image_cmd)
                uses += 1
        if tag in text:
            assert f"docker build -f {dockerfile} -t {tag} ." in text, f"{manifest.name} names the image without its build command"
    assert uses >= 3  # the pod's sidecar and init container, the KServe monitor


@pytest.mark.slow
def test_the_build_stage_files_make_a_wheel_with_the_packs_and_dashboards(tmp_path: Path) -> None:
    """The build stage's WORKDIR assembled from its COPY lines (and the .dockerignore) as the
    engine would, then `pip wheel` of it: the wheel carries the code, the rule packs, the
    dashboards and the monitor command (what `pip install` in the image relies on)."""
    instrs = parse_dockerfile(DOCKERFILE)
    patterns = dockerignore_patterns()
    workdir = None
    src_root = tmp_path / "root"
    for i in (i for i in instrs if i.stage == 0):
        if i.name == "WORKDIR":
            workdir = i.value
        elif i.name == "COPY":
            flags, sources, dest = copy_args(i)
            assert workdir and "from" not in flags
            target = src_root / PurePosixPath(workdir).relative_to("/") / dest
            for src in sources:
                for f in context_files(src, patterns):
                    rel = f.relative_to(REPO_ROOT / src) if (REPO_ROOT / src).is_dir() else Path(f.name)
                    out = target / rel if (REPO_ROOT / src).is_dir() or dest.endswith("/") else target
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(f.read_bytes())
        elif i.name == "RUN" and "pip wheel" in i.value:
            assert i.value.rstrip().endswith(" ."), "the wheel is built from the WORKDIR"
    assert workdir is not None
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "wheels"),
                            str(src_root / PurePosixPath(workdir).relative_to("/"))], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp_path / "wheels").glob("model_monitor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    packs = sorted(p.name for p in (REPO_ROOT / "rules").glob("*.yml"))
    assert {f"monitor/_rules/{p}" for p in packs} <= names
    assert {f"monitor/_grafana/dashboards/{p.name}" for p in (REPO_ROOT / "grafana" / "dashboards").glob("*.json")} <= names
    assert "monitor/cli/serve.py" in names and "monitor/server/proxy.py" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "monitor = monitor.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
