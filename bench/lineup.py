"""Who runs (contenders) and what they run (workloads).

Every contender runs every workload in a subprocess of its own, through the
same command-line contract (``bench/contenders/common.py``), so memory and CPU
figures belong to one client and one workload only. Reference rows (the byte
and ``ws`` sinks) only take part in the receive workloads: they show what the
server emits to a reader that does no Python work at all.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
CONTENDERS_DIR = BENCH / "contenders"
NODE_DIR = BENCH / "server"
VENV = BENCH / ".venv-contenders"
VENV_PYTHON = VENV / "bin" / "python"

RAW = "raw"
PHOENIXJS = "phoenixjs"


@dataclass(frozen=True)
class Contender:
    """One client under test.

    Attributes:
        key: short name used on the command line (``--contenders``) and in results.
        label: the name in tables.
        runtime: ``"project"`` (this interpreter, where maxsdk is installed),
            ``"venv"`` (``bench/.venv-contenders``) or ``"node"``.
        script: the driver, relative to ``bench/``.
        reference: a yardstick row (sinks), not a client: receive workloads only.
        notes: what a reader of the tables should know about how it was driven.
        only: the workload functions it takes part in (``None``: all).
        params: extra parameters passed to every run (a variant of a contender).

    """

    key: str
    label: str
    runtime: str
    script: str
    reference: bool = False
    notes: str = ""
    only: tuple[str, ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def takes_part(self, workload: Workload) -> bool:
        """Whether this contender runs ``workload``."""
        if self.reference and not workload.references:
            return False
        if workload.contenders is not None and self.key not in workload.contenders:
            return False
        return self.only is None or workload.run in self.only

    def command(self, workload: str, endpoint: str, params: dict[str, Any], node: str = "node") -> list[str]:
        """The command line that runs ``workload`` once and prints one JSON result line."""
        encoded = json.dumps({**params, **self.params})
        script = str(BENCH / self.script)
        if self.runtime == "node":
            flags = ["--expose-gc"] if workload == "memory" else []
            if self.key == "ws_sink":
                return [node, script, endpoint, encoded]
            return [node, *flags, script, workload, endpoint, encoded]
        python = sys.executable if self.runtime == "project" else str(VENV_PYTHON)
        return [python, script, "--workload", workload, "--url", endpoint, "--params", encoded]


CONTENDERS: tuple[Contender, ...] = (
    Contender(
        "maxsdk",
        "maxsdk",
        "project",
        "contenders/maxsdk_client.py",
        notes='public API (`Client`, `join`, `push`, `on`), default settings except `overflow="block"` for '
        "receive (lossless); handlers on its dispatcher thread",
    ),
    Contender(
        "maxsdk_drop",
        "maxsdk, drop_oldest overflow",
        "project",
        "contenders/maxsdk_client.py",
        notes='receive only, `overflow="drop_oldest"` (the default before 0.1.0 shipped: now `block`), '
        "10,000-event dispatch queue; the rate counts delivered messages, drops are reported",
        only=("receive",),
        params={"overflow": "drop_oldest"},
    ),
    Contender(
        RAW,
        "raw websocket-client",
        "project",
        "contenders/raw_wsclient.py",
        notes="`create_connection(..., enable_multithread=True, skip_utf8_validation=True)` + `json`, inline on "
        "one thread; 8 callers need a reader thread routing replies; fan-out is one `selectors` loop",
    ),
    Contender(
        PHOENIXJS,
        "phoenix.js (Node)",
        "node",
        "server/phoenixjs_client.js",
        notes="npm `phoenix` on `ws`, one Node process; 8 callers = 8 concurrent promise chains",
    ),
    Contender(
        "phxsocket",
        "phxsocket",
        "venv",
        "contenders/phxsocket_client.py",
        notes="V1 serializer only (sends `vsn=1.0.0`); asyncio `websockets` loop in a thread, handlers on that thread",
    ),
    Contender(
        "realtime",
        "supabase realtime",
        "venv",
        "contenders/realtime_client.py",
        notes="asyncio; V1 only, topics prefixed `realtime:`, pydantic-validated Supabase message shapes, so "
        "floods are sent in the Supabase `broadcast` shape; 8 callers = 8 tasks",
    ),
    Contender(
        "pcpc",
        "phoenix-channels-python-client",
        "venv",
        "contenders/pcpc_client.py",
        notes="asyncio; no push-with-reply API; its default V2 mode drops Phoenix broadcasts (join_ref null), "
        "so it runs in V1; floods are started from a second connection (`publish`)",
    ),
    Contender(
        "byte_sink",
        "server → byte counter (Python `recv_into`)",
        "project",
        "contenders/byte_sink.py",
        reference=True,
        notes="no parsing at all: the server's emit rate",
    ),
    Contender(
        "ws_sink",
        "server → `ws` reader (Node, discards)",
        "node",
        "server/ws_sink.js",
        reference=True,
        notes="frames parsed by `ws`, payloads discarded",
    ),
)

CONTENDER_KEYS = tuple(c.key for c in CONTENDERS)


@dataclass(frozen=True)
class Metric:
    """A column: ``key`` in the results, how to show it, and which way is better."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    digits: int = 0


@dataclass(frozen=True)
class Workload:
    """One benchmark.

    Attributes:
        key: name on the command line (``--only``) and in results.
        run: the contender function it calls (``rtt``, ``receive``...).
        title: the table heading.
        params: full-run parameters; ``quick``: the ``--quick`` ones.
        servers: ``"node"`` and/or ``"embedded"``.
        metrics: the table columns.
        ratio_metrics: the metrics that get ``x raw`` and ``x phoenix.js`` columns.
        references: whether the sink rows take part.
        timeout: seconds one run may take.

    """

    key: str
    run: str
    title: str
    params: dict[str, Any]
    quick: dict[str, Any]
    metrics: tuple[Metric, ...]
    ratio_metrics: tuple[str, ...]
    servers: tuple[str, ...] = ("node",)
    references: bool = False
    timeout: float = 600.0
    description: str = ""
    contenders: tuple[str, ...] | None = None

    def label(self, metric: Metric) -> str:
        """A metric's column label with this run's parameters filled in."""
        return metric.label.format(**self.params)


RTT_METRICS = (
    Metric("p50_us", "p50 µs", "µs", False),
    Metric("p99_us", "p99 µs", "µs", False),
    Metric("p999_us", "p99.9 µs", "µs", False),
)

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        "rtt",
        "rtt",
        "Push → reply round trip, one caller",
        {"count": 10_000, "warmup": 200},
        {"count": 200, "warmup": 20},
        RTT_METRICS,
        ("p50_us", "p99_us"),
        servers=("node", "embedded"),
        description="Sequential `echo` pushes on one joined channel, each waiting for its reply.",
    ),
    Workload(
        "rtt8",
        "rtt_concurrent",
        "Push → reply with 8 concurrent callers",
        {"count": 10_000, "threads": 8, "warmup": 200},
        {"count": 160, "threads": 8, "warmup": 20},
        (Metric("throughput", "replies/s", "replies/s", True), *RTT_METRICS[:2]),
        ("throughput", "p99_us"),
        description="8 threads (async clients: 8 tasks) share one connection and channel; total replies/s.",
    ),
    Workload(
        "receive-100b",
        "receive",
        "Broadcast receive, ~100 B messages",
        {"n": 200_000, "size": 100},
        {"n": 2_000, "size": 100},
        (
            Metric("rate", "msgs/s", "msgs/s", True),
            Metric("cpu_s_per_100k", "CPU s / 100k", "s", False, 2),
        ),
        ("rate",),
        references=True,
        description="One push makes the server send N broadcasts of 100 bytes (the whole V2 text frame) as fast "
        "as the socket takes them; each is delivered to a handler that counts it.",
    ),
    Workload(
        "receive-4kb",
        "receive",
        "Broadcast receive, 4 KB messages",
        {"n": 20_000, "size": 4096},
        {"n": 500, "size": 4096},
        (
            Metric("rate", "msgs/s", "msgs/s", True),
            Metric("mb_s", "MB/s", "MB/s", True, 1),
            Metric("cpu_s_per_100k", "CPU s / 100k", "s", False, 2),
        ),
        ("rate",),
        references=True,
        description="As above with 4,096-byte messages.",
    ),
    Workload(
        "connect",
        "connect_join",
        "Connect + join",
        {"attempts": 200, "warmup": 10},
        {"attempts": 10, "warmup": 2},
        (Metric("p50_ms", "p50 ms", "ms", False, 2), Metric("p99_ms", "p99 ms", "ms", False, 2)),
        ("p50_ms", "p99_ms"),
        description="A new client connects (WebSocket upgrade) and joins `room:bench`; closing is not timed.",
    ),
    Workload(
        "memory",
        "memory",
        "Memory (RSS)",
        {"channels": 1000},
        {"channels": 50},
        (
            Metric("import_cost_mb", "imports MiB", "MiB", False, 1),
            Metric("idle_over_imports_mb", "idle client MiB", "MiB", False, 2),
            Metric("channels_over_idle_mb", "+{channels:,} channels MiB", "MiB", False, 2),
            Metric("idle_mb", "total idle MiB", "MiB", False, 1),
            Metric("channels_mb", "total with channels MiB", "MiB", False, 1),
        ),
        ("idle_mb", "channels_mb"),
        description="RSS of the process: bare interpreter; after importing the client; with an idle connected "
        "client joined to one channel (over the imports); with 1,000 more joined channels (over idle).",
    ),
    Workload(
        "fanout",
        "fanout",
        "Fan-out: 200 clients in one process",
        {"clients": 200, "n": 500, "size": 100},
        {"clients": 5, "n": 50, "size": 100},
        (
            Metric("rate", "msgs/s delivered", "msgs/s", True),
            Metric("threads_per_client", "threads/client", "", False, 1),
            Metric("rss_per_client_mb", "MiB/client", "MiB", False, 3),
            Metric("cpu_s_per_100k", "CPU s / 100k", "s", False, 2),
        ),
        ("rate",),
        description="200 clients, each joined to `room:fanout`; one push makes the server send 500 broadcasts of "
        "100 B to every one of them (100,000 deliveries).",
    ),
    Workload(
        "fanout-1000",
        "fanout",
        "Fan-out: 1,000 clients in one process",
        {"clients": 1000, "n": 100, "size": 100},
        {"clients": 20, "n": 20, "size": 100},
        (
            Metric("rate", "msgs/s delivered", "msgs/s", True),
            Metric("threads_per_client", "threads/client", "", False, 2),
            Metric("rss_per_client_mb", "MiB/client", "MiB", False, 3),
            Metric("cpu_s_per_100k", "CPU s / 100k", "s", False, 2),
        ),
        ("rate",),
        contenders=("maxsdk", RAW, PHOENIXJS),
        description="1,000 clients (1,000 connections) in one process, each joined to `room:fanout`; one push makes "
        "the server send 100 broadcasts of 100 B to every one (100,000 deliveries). Only the thread-cheap "
        "contenders: the asyncio clients start a loop thread per client.",
    ),
    Workload(
        "channels-10k",
        "channels",
        "10,000 channels on one client",
        {"channels": 10_000, "n": 10, "size": 100},
        {"channels": 200, "n": 5, "size": 100},
        (
            Metric("join_rate", "joins/s", "joins/s", True),
            Metric("rate", "msgs/s delivered", "msgs/s", True),
            Metric("kib_per_channel", "KiB/channel", "KiB", False, 2),
            Metric("threads", "threads", "", False),
        ),
        ("join_rate", "rate"),
        contenders=("maxsdk", RAW),
        description="One connection joins 10,000 topics (joins pipelined, then all replies awaited); then a `flood` "
        "push on every channel makes the server send 10 broadcasts of 100 B on each (100,000 deliveries, "
        "each channel's in order).",
    ),
)

WORKLOAD_KEYS = tuple(w.key for w in WORKLOADS)
ALIASES = {
    "receive": ("receive-100b", "receive-4kb"),
    "cpu": ("receive-100b", "receive-4kb"),
    "rtt-concurrent": ("rtt8",),
    "connect-join": ("connect",),
}


def select_workloads(names: list[str] | None) -> list[Workload]:
    """The workloads named on the command line (all when ``names`` is empty)."""
    if not names:
        return list(WORKLOADS)
    wanted: set[str] = set()
    for name in names:
        for part in name.split(","):
            part = part.strip()
            if part in ALIASES:
                wanted.update(ALIASES[part])
            elif part in WORKLOAD_KEYS:
                wanted.add(part)
            else:
                raise SystemExit(f"unknown workload {part!r}; choose from {', '.join(WORKLOAD_KEYS + tuple(ALIASES))}")
    return [w for w in WORKLOADS if w.key in wanted]


def select_contenders(names: str | None) -> list[Contender]:
    """The contenders named by ``--contenders`` (all when ``None``), always in lineup order."""
    if not names:
        return list(CONTENDERS)
    wanted = {part.strip() for part in names.split(",") if part.strip()}
    unknown = wanted - set(CONTENDER_KEYS)
    if unknown:
        raise SystemExit(f"unknown contender(s) {sorted(unknown)}; choose from {', '.join(CONTENDER_KEYS)}")
    return [c for c in CONTENDERS if c.key in wanted]


def with_params(workload: Workload, quick: bool, overrides: dict[str, dict[str, Any]]) -> Workload:
    """The workload with the parameters of this run (quick or full, plus overrides)."""
    params = dict(workload.quick if quick else workload.params)
    params.update(overrides.get(workload.key, {}))
    return replace(workload, params=params)
