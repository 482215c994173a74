"""The lint and type checks: pinned tools, and the same commands in tox, CI and the README."""

from __future__ import annotations

import ast
import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_COMMANDS = ["ruff check .", "ruff format --check .", "mypy --strict maxsdk"]


def _setup_list(name: str) -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            assert isinstance(node.value, ast.List)
            return [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
    raise AssertionError(f"{name} not found in setup.py")


def test_the_lint_tools_are_pinned_to_exact_versions() -> None:
    pinned = {spec.split("==")[0]: spec for spec in _setup_list("LINT_REQUIRES") if "==" in spec}
    assert set(pinned) >= {"ruff", "mypy", "types-requests"}, _setup_list("LINT_REQUIRES")


def test_tox_lint_runs_the_same_commands_as_ci() -> None:
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini", encoding="utf-8")
    commands = [line.strip() for line in tox["testenv:lint"]["commands"].splitlines() if line.strip()]
    assert commands == LINT_COMMANDS
    assert tox["testenv:lint"]["extras"].strip() == "lint"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    positions = [ci.index(command) for command in LINT_COMMANDS]
    assert positions == sorted(positions)
    assert max(positions) < ci.index("python -m pytest"), "lint runs before the tests"


def test_mypy_configuration_does_not_weaken_strict() -> None:
    # `mypy` (tox, editors) and `mypy --strict maxsdk` (README, CI) must report the same errors.
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "strict = true" in text
    assert "warn_unused_ignores = false" not in text
