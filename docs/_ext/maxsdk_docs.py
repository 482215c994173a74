"""Build-time generators for the maxsdk documentation.

Run by Sphinx (``builder-inited``) before any page is read; each writes a
Markdown fragment under ``docs/_generated/`` that the pages ``{include}``:

* ``channel_states.md``: the channel state machine, drawn from
  :data:`maxsdk.protocol.phoenix.channel.TRANSITIONS` (Mermaid + a table);
* ``connection_states.md``: the connection lifecycle, drawn from
  :data:`CONNECTION_TRANSITIONS` below, checked against
  :class:`maxsdk.ConnectionState` and the states the engine's code sets;
* ``errors.md``: one troubleshooting entry per error class of
  :mod:`maxsdk.errors` (meaning from its docstring; usual cause and what to
  do from ``docs/_data/errors.md``);
* ``signals.md``: every signal of :mod:`maxsdk.signals` with its doc;
* ``api_public.md``: autodoc directives for every name in ``maxsdk.__all__``;
* ``cli_*.txt``: the real output of ``maxsdk --help``, ``maxsdk COMMAND --help`` and ``maxsdk demo``.

A problem (an error class without an entry, a state missing from a diagram,
the demo failing) is a Sphinx warning, so ``sphinx-build -W`` fails. The
pure functions import no Sphinx and are used by ``tests/docs`` as well.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent.parent
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"
ENTRIES = DOCS / "_data" / "errors.md"
ENGINE = ROOT / "maxsdk" / "_runtime" / "engine.py"

# -- the channel state machine -----------------------------------------------------------


def channel_transitions() -> list[tuple[str, str, str]]:
    """``(from, trigger, to)`` for every entry of the channel TRANSITIONS table, in table order."""
    from maxsdk.protocol.phoenix.channel import TRANSITIONS

    return [(str(state), str(trigger), str(target)) for (state, trigger), target in TRANSITIONS.items()]


def _mermaid(initial: str, edges: list[tuple[str, str, str]]) -> str:
    """A Mermaid state diagram; several triggers between the same two states share one arrow."""
    labels: dict[tuple[str, str], list[str]] = {}
    for source, trigger, target in edges:
        labels.setdefault((source, target), []).append(trigger)
    lines = ["stateDiagram-v2", f"    [*] --> {initial}"]
    for (source, target), triggers in labels.items():
        lines.append(f"    {source} --> {target}: {' / '.join(triggers)}")
    return "\n".join(lines)


def channel_state_markdown() -> str:
    """The channel diagram and table, from TRANSITIONS."""
    edges = channel_transitions()
    rows = "\n".join(f"| `{source}` | `{trigger}` | `{target}` |" for source, trigger, target in edges)
    return (
        "```{mermaid}\n"
        + _mermaid("closed", edges)
        + "\n```\n\n"
        + "Generated from `maxsdk.protocol.phoenix.channel.TRANSITIONS`; anything not listed is refused with"
        " `LocalProtocolError`.\n\n" + "| from | trigger | to |\n|---|---|---|\n" + rows + "\n"
    )


# -- the connection lifecycle ------------------------------------------------------------------

#: ``(from, what happens, to)``: the connection lifecycle of :class:`maxsdk.Client`. The engine sets
#: states from several places rather than from one table; this table is checked against
#: ``ConnectionState`` and the states the engine's code sets (:func:`connection_problems`), and
#: ``tests/docs/test_diagrams.py`` checks that every transition a real client goes through is listed.
CONNECTION_TRANSITIONS: list[tuple[str, str, str]] = [
    ("closed", "connect()", "connecting"),
    ("disconnected", "connect()", "connecting"),
    ("connecting", "connection opened", "connected"),
    ("connecting", "attempt failed, will retry", "reconnecting"),
    ("connecting", "fatal refusal (e.g. 403) or retries exhausted", "closed"),
    ("connecting", "disconnect() or connect timeout", "disconnected"),
    ("connected", "dropped (abnormal close, heartbeat timeout)", "reconnecting"),
    ("connected", "server closed normally (1000)", "disconnected"),
    ("connected", "dropped, reconnect disabled", "closed"),
    ("connected", "disconnect()", "disconnected"),
    ("reconnecting", "backoff delay elapsed", "connecting"),
    ("reconnecting", "disconnect()", "disconnected"),
    ("closed", "close()", "closing"),
    ("connecting", "close()", "closing"),
    ("connected", "close()", "closing"),
    ("reconnecting", "close()", "closing"),
    ("disconnected", "close()", "closing"),
    ("closing", "threads joined", "closed"),
]


def connection_states() -> list[str]:
    """The values of :class:`maxsdk.ConnectionState`, in definition order."""
    from maxsdk.status import ConnectionState

    return [state.value for state in ConnectionState]


def engine_target_states(source: str | None = None) -> set[str]:
    """The states the engine's code moves to: ``ConnectionState.X`` passed to a state setter or assigned."""
    tree = ast.parse(source if source is not None else ENGINE.read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in ast.walk(tree):
        values: list[ast.expr] = []
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in ("_set_state", "_end_session") and node.args:
                values.append(node.args[0])
        elif isinstance(node, ast.Assign):
            names = [t for t in node.targets if isinstance(t, (ast.Attribute, ast.Tuple))]
            if any(_assigns_state(t) for t in names):
                values.extend(_elements(node.value))
        for value in values:
            if isinstance(value, ast.Attribute) and _is_connection_state(value.value):
                targets.add(value.attr.lower())
    return targets


def _assigns_state(target: ast.expr) -> bool:
    if isinstance(target, ast.Attribute):
        return target.attr == "_state"
    if isinstance(target, ast.Tuple):
        return any(_assigns_state(t) for t in target.elts)
    return False


def _elements(value: ast.expr) -> list[ast.expr]:
    return list(value.elts) if isinstance(value, ast.Tuple) else [value]


def _is_connection_state(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "ConnectionState"


def connection_problems() -> list[str]:
    """Why the connection diagram would be wrong (empty when it matches the code)."""
    states = set(connection_states())
    problems = []
    used = {s for s, _, _ in CONNECTION_TRANSITIONS} | {t for _, _, t in CONNECTION_TRANSITIONS}
    for state in sorted(states - used):
        problems.append(f"ConnectionState.{state.upper()} is not in the connection diagram")
    for state in sorted(used - states):
        problems.append(f"the connection diagram has {state!r}, which ConnectionState lacks")
    entered = {t for _, _, t in CONNECTION_TRANSITIONS}
    for state in sorted(engine_target_states() - entered):
        problems.append(f"the engine moves to {state!r} but no transition of the connection diagram enters it")
    return problems


def connection_state_markdown() -> str:
    """The connection diagram and table."""
    rows = "\n".join(f"| `{source}` | {what} | `{target}` |" for source, what, target in CONNECTION_TRANSITIONS)
    return (
        "```{mermaid}\n"
        + _mermaid("closed", CONNECTION_TRANSITIONS)
        + "\n```\n\n"
        + "States from `maxsdk.ConnectionState`; the build checks that the diagram covers every state and every"
        " state the engine moves to.\n\n" + "| from | what happens | to |\n|---|---|---|\n" + rows + "\n"
    )


# -- troubleshooting --------------------------------------------------------------------------------


def error_classes() -> list[type[BaseException]]:
    """Every exception class of :mod:`maxsdk.errors`, plus maxsdk errors exported elsewhere, in source order."""
    import maxsdk
    from maxsdk import errors

    found: list[type[BaseException]] = [
        obj
        for _, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    ]
    found.sort(key=lambda cls: inspect.getsourcelines(cls)[1])
    for name in sorted(maxsdk.__all__):
        obj = getattr(maxsdk, name)
        if inspect.isclass(obj) and issubclass(obj, errors.MaxsdkError) and obj not in found:
            found.append(obj)
    return found


def load_entries(path: Path = ENTRIES) -> dict[str, str]:
    """The entries of ``docs/_data/errors.md``: ``## ClassName`` headings and their Markdown bodies."""
    entries: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = re.fullmatch(r"## (\w+)\s*", line)
        if heading:
            if current is not None:
                entries[current] = "\n".join(lines).strip()
            current, lines = heading[1], []
        elif current is not None:
            lines.append(line)
    if current is not None:
        entries[current] = "\n".join(lines).strip()
    return entries


REQUIRED_PARTS = ("**Usual cause.**", "**What to do.**")


def troubleshooting_problems(entries: dict[str, str] | None = None) -> list[str]:
    """Error classes without a complete entry, and entries for classes that do not exist."""
    entries = load_entries() if entries is None else entries
    names = [cls.__name__ for cls in error_classes()]
    problems = []
    for name in names:
        body = entries.get(name)
        if body is None:
            problems.append(f"{name} has no troubleshooting entry in docs/_data/errors.md")
            continue
        for part in REQUIRED_PARTS:
            if part not in body:
                problems.append(f"the troubleshooting entry of {name} lacks {part}")
    for name in sorted(set(entries) - set(names)):
        problems.append(f"docs/_data/errors.md has an entry for {name}, which is not an error class of maxsdk")
    return problems


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return doc.split("\n\n")[0].replace("\n", " ").strip()


def _bases(cls: type) -> str:
    return ", ".join(f"`{base.__name__}`" for base in cls.__bases__)


def troubleshooting_markdown() -> str:
    """One section per error class: what it means, its bases, the usual cause and what to do."""
    entries = load_entries()
    parts = []
    for cls in error_classes():
        name = cls.__name__
        parts.append(
            f"({name.lower()})=\n### `{name}`\n\n"
            f"*{_summary(cls)}* (`{cls.__module__}.{name}`; is a {_bases(cls)})\n\n"
            f"{entries.get(name, '**No entry yet.**')}\n"
        )
    return "\n".join(parts)


# -- signals ----------------------------------------------------------------------------------------------


def signals_markdown() -> str:
    """Every signal of :mod:`maxsdk.signals`: its name and its documentation."""
    from maxsdk import signals

    parts = []
    for name in signals.__all__:
        signal = getattr(signals, name)
        doc = getattr(signal, "__doc__", None)
        if name == "namespace" or not doc or type(signal).__name__ != "NamedSignal":
            continue
        parts.append(f"### `signals.{name}`\n\n{inspect.cleandoc(doc)}\n")
    return "\n".join(parts)


# -- the API reference ------------------------------------------------------------------------------------

#: Section of the API reference for each defining module (anything else goes to "Other").
API_SECTIONS = [
    ("Client and channels", ("maxsdk.client", "maxsdk.channel", "maxsdk.reply", "maxsdk.presence", "maxsdk.stream")),
    ("Durable outbox", ("maxsdk.outbox",)),
    ("Messages and typed payloads", ("maxsdk.protocol.phoenix.message", "maxsdk.models")),
    ("Configuration values", ("maxsdk.protocol.backoff", "maxsdk.auth")),
    ("State, diagnostics and metrics", ("maxsdk.status", "maxsdk.stats", "maxsdk.protocol.phoenix.channel")),
    (
        "Other protocols",
        ("maxsdk.protocol_client", "maxsdk.jsonrpc", "maxsdk.jsonclient", "maxsdk.call", "maxsdk.subscription"),
    ),
]


#: Names listed first in their section (the rest follow in alphabetical order).
API_FIRST = ("Client", "Channel", "Reply", "PendingReply", "Outbox", "ProtocolClient", "JsonRpcClient", "JsonClient")


def public_classes() -> list[tuple[str, Any]]:
    """``(name, object)`` for every class in ``maxsdk.__all__`` except the errors (they have their own page)."""
    import maxsdk

    out = []
    rank = {name: index for index, name in enumerate(API_FIRST)}
    for name in sorted(maxsdk.__all__, key=lambda n: (rank.get(n, len(rank)), n)):
        obj = getattr(maxsdk, name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            out.append((name, obj))
    return out


def _is_private(cls: type) -> bool:
    """A class defined in a private module (``maxsdk._client_base``, ``maxsdk._runtime...``) or with a private name."""
    return cls.__name__.startswith("_") or any(part.startswith("_") for part in cls.__module__.split("."))


def own_private_bases(cls: type) -> list[type]:
    """The private ancestors whose public members ``cls`` is the first public class to document.

    ``Client`` gets ``ClientBase``'s ``stats()``, ``diagnostics()``...; ``JsonRpcClient`` gets none,
    because ``ProtocolClient``, a documented base, already shows them.
    """
    public = [base for base in cls.__mro__[1:] if not _is_private(base) and base is not object]
    covered = {ancestor for base in public for ancestor in base.__mro__}
    return [base for base in cls.__mro__[1:] if _is_private(base) and base not in covered]


def public_bases(bases: list[Any]) -> list[Any]:
    """``bases`` with each private class replaced by its own bases, recursively (for "Bases:" lines)."""
    out: list[Any] = []
    for base in bases:
        replaced = public_bases(list(base.__bases__)) if inspect.isclass(base) and _is_private(base) else [base]
        out.extend(b for b in replaced if b not in out)
    if len(out) > 1 and object in out:
        out.remove(object)
    return out


def _process_bases(app: Any, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    """Never show a private class on a "Bases:" line: it has no page to link to."""
    if name.startswith("maxsdk"):
        bases[:] = public_bases(bases)


def api_markdown() -> str:
    """Autodoc directives for every public class, grouped by the module that defines it."""
    import maxsdk

    sections: dict[str, list[str]] = {title: [] for title, _ in API_SECTIONS}
    sections["Other"] = []
    for name, obj in public_classes():
        module = getattr(obj, "__module__", "")
        title = next((t for t, modules in API_SECTIONS if any(module.startswith(m) for m in modules)), "Other")
        sections[title].append(name)
    parts = []
    for title, names in sections.items():
        if not names:
            continue
        parts.append(f"## {title}\n")
        for name in names:
            obj = getattr(maxsdk, name)
            # A NamedTuple's fields are documented by its "Attributes:" section; :members: would repeat them.
            members = "" if issubclass(obj, tuple) else "   :members:\n"
            if members and own_private_bases(obj):
                # Document what the private bases define, and nothing a public base already documents.
                shown = [base.__name__ for base in obj.__mro__[1:] if not _is_private(base)]
                members += f"   :inherited-members: {', '.join(shown)}\n"
            parts.append(f"```{{eval-rst}}\n.. autoclass:: maxsdk.{name}\n{members}   :show-inheritance:\n```\n")
    return "\n".join(parts)


# -- the command line -----------------------------------------------------------------------------------------


#: The commands whose ``--help`` the CLI page shows.
CLI_COMMANDS = ("demo", "serve", "listen", "push", "outbox")


def capture_cli() -> dict[str, str]:
    """Run the ``maxsdk`` command and return its real output (``--help``, each command's, and ``demo``)."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "100", "PYTHONPATH": str(ROOT)}
    outputs = {}
    runs = [("help", ["--help"], 60), ("demo", ["demo"], 120)]
    runs += [(f"{command}_help", [command, "--help"], 60) for command in CLI_COMMANDS]
    for name, args, timeout in runs:
        result = subprocess.run(
            [sys.executable, "-m", "maxsdk", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise RuntimeError(f"`maxsdk {' '.join(args)}` exited {result.returncode}: {result.stderr[-2000:]}")
        outputs[name] = f"$ maxsdk {' '.join(args)}\n{result.stdout.rstrip()}\n"
    return outputs


# -- Sphinx -------------------------------------------------------------------------------------------------


def _write(name: str, text: str) -> None:
    """Write a generated file only when it changed (so Sphinx does not re-read pages for nothing)."""
    GENERATED.mkdir(exist_ok=True)
    path = GENERATED / name
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def generate(app: Any) -> None:
    """Write every fragment; report problems as warnings (errors under ``-W``)."""
    from sphinx.util import logging

    logger = logging.getLogger("maxsdk_docs")
    _write("channel_states.md", channel_state_markdown())
    _write("connection_states.md", connection_state_markdown())
    _write("errors.md", troubleshooting_markdown())
    _write("signals.md", signals_markdown())
    _write("api_public.md", api_markdown())
    for problem in connection_problems() + troubleshooting_problems():
        logger.warning(problem)
    try:
        outputs = capture_cli()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        logger.warning(f"could not capture the CLI output: {exc}")
        names = ["help", "demo", *(f"{command}_help" for command in CLI_COMMANDS)]
        outputs = {name: f"(capture failed: {exc})\n" for name in names}
    for name, text in outputs.items():
        _write(f"cli_{name}.txt", text)


def setup(app: Any) -> dict[str, Any]:
    """Register the generators."""
    app.connect("builder-inited", generate)
    app.connect("autodoc-process-bases", _process_bases)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
