"""Import the docs build extension (docs/_ext/maxsdk_docs.py) without Sphinx."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def docs_extension() -> ModuleType:
    spec = importlib.util.spec_from_file_location("maxsdk_docs", DOCS / "_ext" / "maxsdk_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
