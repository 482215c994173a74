"""Sphinx configuration of the maxsdk documentation (``tox -e docs``)."""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

import maxsdk  # noqa: E402

project = "maxsdk"
author = "the maxsdk authors"
copyright = "the maxsdk authors"
release = version = maxsdk.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "myst_parser",
    "sphinxcontrib.mermaid",
    "maxsdk_docs",  # docs/_ext: diagrams, troubleshooting, signals, API list and CLI output, generated at build time
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_data", "_ext", "_generated", "Thumbs.db", ".DS_Store"]

myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# performance.md's benchmark tables (written by `bench/run.py --update-docs`) put H4 headings
# under H2 ones; a skipped heading level is harmless, every other warning still fails the build.
suppress_warnings = ["myst.header"]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "separated"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

html_theme = "furo"
html_title = f"maxsdk {release}"
