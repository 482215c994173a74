"""The public surface: complete exports, and a light `import maxsdk`."""

from __future__ import annotations

import subprocess
import sys

import maxsdk


def test_every_exported_name_resolves():
    for name in maxsdk.__all__:
        assert getattr(maxsdk, name) is not None, name
    assert sorted(maxsdk.__all__) == maxsdk.__all__


def test_every_error_class_is_exported():
    from maxsdk import errors

    exported = set(maxsdk.__all__)
    for name in errors.__all__:
        assert name in exported, f"maxsdk.errors.{name} is not exported from maxsdk"


def test_a_plain_import_does_not_load_the_optional_machinery():
    code = (
        "import sys, maxsdk; "
        "print(sorted(m for m in ('requests', 'persistqueue', 'sqlite3', 'maxsdk.jsonrpc') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
