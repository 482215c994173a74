"""The package as a user gets it: `python -m build` makes a wheel and an sdist that `twine check`
passes, and the wheel installs into a fresh virtualenv where `import maxsdk` and the `maxsdk`
command work (not the checkout: the test runs them from elsewhere).

One build and one install for the whole module (about a minute, mostly pip fetching the
dependencies): it needs PyPI, as `pip install -e ".[test]"` did.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from maxsdk import __version__

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# The variables of the surrounding virtualenv or of the test run must not leak into the fresh one.
ENV = {
    key: value
    for key, value in os.environ.items()
    if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")
}
ENV.update(NO_COLOR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")


def check(*args: str | Path, cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`python -m build`: the sdist from the checkout, then the wheel from the sdist (so the sdist
    must be complete, and no stale `build/` of the checkout can slip into the wheel)."""
    out = tmp_path_factory.mktemp("dist")
    check(sys.executable, "-m", "build", "--outdir", out, ROOT, cwd=out)
    (wheel,) = out.glob("maxsdk-*.whl")
    (sdist,) = out.glob("maxsdk-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def venv(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed (the dependencies come from its metadata only)."""
    home = tmp_path_factory.mktemp("venv")
    check(sys.executable, "-m", "venv", home / "env", cwd=home)
    bin_dir = home / "env" / ("Scripts" if os.name == "nt" else "bin")
    check(bin_dir / "python", "-m", "pip", "install", "--quiet", dist["wheel"], cwd=home)
    return bin_dir


def test_build_makes_a_wheel_and_an_sdist_of_this_version(dist: dict[str, Path]) -> None:
    assert dist["wheel"].name.startswith(f"maxsdk-{__version__}-py3-none-any")
    assert dist["sdist"].name == f"maxsdk-{__version__}.tar.gz"
    names = zipfile.ZipFile(dist["wheel"]).namelist()
    assert "maxsdk/py.typed" in names and "maxsdk/cli/__init__.py" in names and "maxsdk/server/__init__.py" in names
    assert not any(name.startswith(("tests/", "bench/", "examples/")) for name in names)
    entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
    assert "maxsdk = maxsdk.cli:main" in zipfile.ZipFile(dist["wheel"]).read(entry_points).decode()
    with tarfile.open(dist["sdist"]) as sdist:
        members = {Path(*Path(name).parts[1:]).as_posix() for name in sdist.getnames()}
    assert {"setup.py", "pyproject.toml", "README.md", "maxsdk/py.typed", "maxsdk/cli/__init__.py"} <= members


def test_twine_check_passes_on_both(dist: dict[str, Path]) -> None:
    out = check(sys.executable, "-m", "twine", "check", "--strict", dist["wheel"], dist["sdist"], cwd=ROOT)
    assert out.count("PASSED") == 2, out


def test_the_wheel_works_in_a_fresh_virtualenv(venv: Path, tmp_path: Path) -> None:
    code = "import maxsdk, maxsdk.outbox, maxsdk.server; print(maxsdk.__version__); print(maxsdk.__file__)"
    version, location = check(venv / "python", "-c", code, cwd=tmp_path).split()
    assert version == __version__
    assert Path(location).is_relative_to(venv.parent), "imported the installed wheel, not the checkout"
    help_text = check(venv / "maxsdk", "--help", cwd=tmp_path)
    assert "maxsdk demo" in help_text and "exit status:" in help_text
    demo = check(venv / "maxsdk", "demo", cwd=tmp_path, timeout=120)
    assert "demo complete" in demo


def test_the_install_docs_match_the_package(dist: dict[str, Path]) -> None:
    import re
    from importlib.metadata import metadata

    quickstart = (ROOT / "docs" / "quickstart.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shell = "\n".join(re.findall(r"^```sh\n(.*?)^```$", quickstart + readme, flags=re.S | re.M))
    assert not re.search(r"^pip install [\"']?maxsdk\b", shell, flags=re.M), "maxsdk is not on PyPI"
    assert f"dist/{dist['wheel'].name}" in quickstart and dist["sdist"].name in quickstart
    documented = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", quickstart, flags=re.M))
    extras = {name for pair in documented for name in pair if name}
    assert extras == set(metadata("maxsdk").get_all("Provides-Extra") or [])
