"""Everything the suite needs besides maxsdk, installed on demand, and the machine it ran on.

* Node packages (``ws``, ``phoenix``) in ``bench/server/node_modules``: ``npm ci``
  from the committed lock file when missing.
* ``bench/.venv-contenders``: the other Python clients and the chart/profile tools
  (``requirements-contenders.txt``), so they never touch the project's environment.
  It is (re)installed when the requirements file changes. A package that cannot be
  installed makes its contender "n/a" with the pip error, never a silent gap.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lineup import NODE_DIR, VENV, VENV_PYTHON

BENCH = Path(__file__).resolve().parent
REQUIREMENTS = BENCH / "requirements-contenders.txt"
STAMP = VENV / "requirements.sha256"

# Which requirement each venv contender needs (others are tools).
CONTENDER_PACKAGES = {
    "phxsocket": "phxsocket",
    "realtime": "realtime",
    "pcpc": "phoenix-channels-python-client",
}
VERSION_PACKAGES = (
    "phxsocket",
    "realtime",
    "phoenix-channels-python-client",
    "websockets",
    "pydantic",
    "matplotlib",
    "py-spy",
)


def log(message: str) -> None:
    """Progress goes to stderr; stdout is for the tables."""
    print(message, file=sys.stderr, flush=True)


@dataclass
class Environment:
    """What is available for this run."""

    node: str | None = None
    venv_ok: bool = False
    unavailable: dict[str, str] = field(default_factory=dict)  # contender key -> reason

    @property
    def charts(self) -> bool:
        """Whether matplotlib is there to draw the charts."""
        return self.venv_ok and "matplotlib" not in self.unavailable


def ensure_node() -> str:
    """Find node and npm, and ``npm ci`` the bench packages if they are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SystemExit("node and npm are required (the bench server and phoenix.js run on Node >= 18)")
    marker = NODE_DIR / "node_modules" / ".package-lock.json"
    lock = NODE_DIR / "package-lock.json"
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        log("installing the bench's Node packages (npm ci)...")
        # npm's own output goes to stderr: stdout carries only the tables.
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=NODE_DIR,
            check=True,
            timeout=600,
            stdout=sys.stderr,
        )
    return node


def _requirements_hash() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def _requirement_lines() -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return [line for line in lines if line]


def ensure_venv(env: Environment) -> None:
    """Create or refresh ``bench/.venv-contenders``; record what could not be installed."""
    if VENV_PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == _requirements_hash():
        env.venv_ok = True
        return
    log(f"preparing {VENV.relative_to(BENCH.parent)} (the other Python clients, matplotlib, py-spy)...")
    if not VENV_PYTHON.exists():
        created = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True, text=True)
        if created.returncode != 0:
            reason = f"cannot create the bench virtualenv: {created.stderr.strip()[-300:]}"
            env.unavailable.update(dict.fromkeys([*CONTENDER_PACKAGES, "matplotlib"], reason))
            return
    pip = [str(VENV_PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    installed = subprocess.run([*pip, "-r", str(REQUIREMENTS)], capture_output=True, text=True, timeout=1200)
    if installed.returncode == 0:
        STAMP.write_text(_requirements_hash())
    else:
        # Install one by one, so that one broken package only takes out its own contender.
        for requirement in _requirement_lines():
            one = subprocess.run([*pip, requirement], capture_output=True, text=True, timeout=1200)
            if one.returncode != 0:
                name = requirement.split("=")[0].split("<")[0].split(">")[0].strip()
                reason = f"cannot be installed: {_last_error_line(one.stderr)}"
                keys = [key for key, package in CONTENDER_PACKAGES.items() if package == name] or [name]
                env.unavailable.update(dict.fromkeys(keys, reason))
    env.venv_ok = True


def _last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if "ERROR" in line or "error" in line]
    return (lines[-1] if lines else stderr.strip()[-200:])[:200]


def bare_rss_mb(python: str) -> float:
    """RSS of an interpreter that imported nothing (the memory workload's baseline)."""
    code = "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')) / 1024)"
    return float(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)


# -- what the results were measured on --------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=BENCH.parent, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _node_package_version(name: str) -> str | None:
    try:
        return json.loads((NODE_DIR / "node_modules" / name / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def _venv_versions() -> dict[str, str | None]:
    if not VENV_PYTHON.exists():
        return {}
    code = (
        "import json, importlib.metadata as m, sys\n"
        "out = {}\n"
        f"for name in {list(VERSION_PACKAGES)!r}:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: out[name] = None\n"
        "out['python'] = sys.version.split()[0]\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([str(VENV_PYTHON), "-c", code], capture_output=True, text=True)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def machine_info(node: str | None) -> dict[str, Any]:
    """CPU, cores, memory, OS, interpreter and package versions, and the maxsdk commit."""
    import importlib.metadata as metadata

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    node_version = None
    if node:
        node_version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    dirty = _git("status", "--porcelain", "--", "maxsdk")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _mem_total_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "node": node_version,
        "maxsdk": version("maxsdk"),
        "maxsdk_commit": _git("rev-parse", "--short", "HEAD"),
        "maxsdk_dirty": bool(dirty),
        "websocket-client": version("websocket-client"),
        "npm phoenix": _node_package_version("phoenix"),
        "npm ws": _node_package_version("ws"),
        "venv": _venv_versions(),
    }
