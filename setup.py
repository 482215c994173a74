"""Packaging for maxsdk: a synchronous, thread-based real-time client SDK."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
ABOUT: dict = {}
exec((HERE / "maxsdk" / "_version.py").read_text(encoding="utf-8"), ABOUT)

PROMETHEUS_REQUIRES = ["prometheus-client>=0.17"]
DJANGO_REQUIRES = ["django>=4.2"]
FLASK_REQUIRES = ["flask>=2.3"]
# SOCKS proxies: websocket-client speaks SOCKS through python-socks, requests (long-poll) through PySocks.
SOCKS_REQUIRES = ["python-socks>=2.4", "PySocks>=1.7.1"]
DOCS_REQUIRES = [
    "sphinx>=7",
    "furo>=2024.1.29",
    "myst-parser>=2",
    "sphinxcontrib-mermaid>=0.9",
    # autodoc imports every public module, the optional integrations included.
    "prometheus-client>=0.17",
    "pytest>=7.4",
    *DJANGO_REQUIRES,
    *FLASK_REQUIRES,
]
TEST_REQUIRES = [
    "prometheus-client>=0.17",
    "pytest>=7.4",
    "pytest-timeout>=2.2",
    "hypothesis>=6.90",
    "responses>=0.24",
    "trustme>=1.1",
    # tests/contrib reads the alert rules (YAML).
    "pyyaml>=6",
    *SOCKS_REQUIRES,
    # A third-party JSON-RPC 2.0 server implementation for the interop tests (tests/interop).
    "json-rpc>=1.15",
    # The integrations and their example apps (a gunicorn run with two workers).
    *DJANGO_REQUIRES,
    *FLASK_REQUIRES,
    "gunicorn>=21.2; sys_platform != 'win32'",
    # tests/test_packaging.py builds the wheel and sdist, checks them and installs the wheel.
    "build>=1.0",
    "twine>=5",
    # tests/docs builds the documentation with warnings as errors.
    "sphinx>=7",
    "furo>=2024.1.29",
    "myst-parser>=2",
    "sphinxcontrib-mermaid>=0.9",
]
# Exact versions: a new ruff or mypy release may add rules or drop the need for a
# `type: ignore`, and lint must not turn red on its own. Upgrade them on purpose.
LINT_REQUIRES = [
    "ruff==0.17.6",
    "mypy==2.4.1",
    "types-requests==2.33.0.20261030",
    # Typed packages the package imports: mypy checks against them, so that
    # `pip install -e .[lint]` alone gives the same result as a full dev install.
    *PROMETHEUS_REQUIRES,
    *FLASK_REQUIRES,
    "pytest>=7.4",
]

setup(
    name="maxsdk",
    version=ABOUT["__version__"],
    description="Blocking, thread-based Python client for Phoenix Channels and other WebSocket protocols",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["maxsdk", "maxsdk.*"]),
    package_data={"maxsdk": ["py.typed"]},
    include_package_data=True,
    install_requires=[
        "websocket-client>=1.7",
        "requests>=2.31",
        "dataclasses-json>=0.6",
        "blinker>=1.7",
        "persist-queue>=1.0",
        # The embedded Phoenix-protocol server (tests, examples, `maxsdk serve`).
        "websockets>=13.0",
        # RFC 6902 JSON Patch for replicated state (maxsdk.protocol.patch).
        "jsonpatch>=1.33",
    ],
    extras_require={
        "test": TEST_REQUIRES,
        "lint": LINT_REQUIRES,
        "docs": DOCS_REQUIRES,
        "prometheus": PROMETHEUS_REQUIRES,
        "socks": SOCKS_REQUIRES,
        "django": DJANGO_REQUIRES,
        "flask": FLASK_REQUIRES,
        "dev": sorted(set(TEST_REQUIRES + LINT_REQUIRES + DOCS_REQUIRES + ["tox>=4"])),
    },
    entry_points={"console_scripts": ["maxsdk=maxsdk.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Typing :: Typed",
        "Intended Audience :: Developers",
        "Topic :: Internet :: WWW/HTTP",
    ],
)
