"""Run the maxsdk benchmark suite and print markdown tables.

    python bench/run.py                    # everything; writes bench/results/latest.{md,json} + charts
    python bench/run.py --quick            # a tiny smoke run of every workload (prints only)
    python bench/run.py --only receive     # some workloads (rtt, rtt8, receive, receive-100b,
                                           #   receive-4kb, cpu, connect, memory, fanout)
    python bench/run.py --repeat 3 --contenders maxsdk,raw,phoenixjs
    python bench/run.py --issue2           # the issue-2 table sizes (5,000 pushes, 100,000 x 100 B)

Also ``tox -e bench [-- ARGS]``. Needs Node >= 18 and npm (the bench server and
phoenix.js); the first run installs ``bench/server/node_modules`` (``npm ci``)
and ``bench/.venv-contenders`` (the other Python clients, matplotlib, py-spy).

How it measures: one Node server process (``bench/server/server.js``) serves every
workload (plus maxsdk's embedded Python server for the round-trip column). For
each workload, every contender runs once in a fresh subprocess, then all of them
again, ``--repeat`` times (A B C … A B C …), so slow drifts of a shared machine
hit everyone alike. Tables show the median and the min-max range, and ratios to
raw websocket-client and to phoenix.js from the same run.

Partial runs (``--quick``, ``--only``, ``--contenders``) only print, unless
``--output DIR`` is given; a full run writes ``bench/results``. ``--render
bench/results/latest.json [--output DIR]`` re-renders a saved run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from environment import Environment, bare_rss_mb, ensure_node, ensure_venv, log, machine_info  # noqa: E402
from lineup import (  # noqa: E402
    CONTENDERS,
    VENV_PYTHON,
    WORKLOADS,
    Contender,
    Workload,
    select_contenders,
    select_workloads,
    with_params,
)
from report import render  # noqa: E402
from servers import ServerProcess, embedded_server, node_server  # noqa: E402

RESULTS = BENCH / "results"
DOCS = BENCH.parent / "docs" / "performance.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the maxsdk benchmark suite and print markdown tables.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repetition: a smoke run")
    parser.add_argument("--only", action="append", metavar="WORKLOAD", help="run only these workloads (repeatable)")
    parser.add_argument("--repeat", type=int, help="repetitions per contender (default 5; 1 with --quick)")
    parser.add_argument("--contenders", metavar="LIST", help="comma-separated contender keys (default: all)")
    parser.add_argument("--output", type=Path, help="write latest.md, latest.json and charts here")
    parser.add_argument("--no-charts", action="store_true", help="do not draw the PNG charts")
    parser.add_argument("--no-embedded", action="store_true", help="skip the embedded Python server column")
    parser.add_argument("--rtt-count", type=int, help="pushes per round-trip run (default 10,000)")
    parser.add_argument("--flood-count", type=int, help="messages per 100 B receive run (default 200,000)")
    parser.add_argument("--issue2", action="store_true", help="the issue-2 sizes: 5,000 pushes, 100,000 x 100 B")
    parser.add_argument(
        "--set", action="append", default=[], metavar="WORKLOAD.PARAM=VALUE", help="override one workload parameter"
    )
    parser.add_argument(
        "--render", type=Path, metavar="RESULTS.json", help="re-render the tables (and charts) of an earlier run"
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="also copy the tables into docs/performance.md (between its bench:results markers)",
    )
    return parser.parse_args(argv)


def overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Workload parameter overrides from the command line."""
    result: dict[str, dict[str, Any]] = {}
    if args.issue2:
        result.setdefault("rtt", {})["count"] = 5_000
        result.setdefault("receive-100b", {})["n"] = 100_000
    if args.rtt_count:
        result.setdefault("rtt", {})["count"] = args.rtt_count
    if args.flood_count:
        result.setdefault("receive-100b", {})["n"] = args.flood_count
    for item in args.set:
        try:
            target, value = item.split("=", 1)
            workload, param = target.split(".", 1)
            result.setdefault(workload, {})[param] = json.loads(value)
        except ValueError:
            raise SystemExit(f"--set expects WORKLOAD.PARAM=VALUE, got {item!r}") from None
    return result


def run_one(
    contender: Contender, workload: Workload, server: ServerProcess, node: str, bare: dict[str, float]
) -> dict[str, Any]:
    """Run one contender on one workload once, in its own process; return its result line."""
    command = contender.command(workload.run, server.endpoint, workload.params, node)
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=workload.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {workload.timeout:g} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"no result (exit {done.returncode}): {' '.join(tail)[:300]}"}
    result: dict[str, Any] = json.loads(lines[-1])
    metrics = result.get("metrics")
    if workload.run == "memory" and metrics and contender.runtime != "node":
        # The same baseline for every Python client: an interpreter that imported nothing.
        base = bare[command[0]]
        metrics["bare_mb"] = base
        metrics["import_cost_mb"] = metrics["imports_mb"] - base
    return result


def describe(result: dict[str, Any], workload: Workload) -> str:
    """One progress line's worth of a result."""
    if "na" in result:
        return f"n/a ({result['na'][:60]})"
    if "error" in result:
        return f"ERROR {result['error'][:160]}"
    metrics = result["metrics"]
    return ", ".join(f"{m.label} {metrics.get(m.key, float('nan')):,.2f}" for m in workload.metrics[:2])


def run_suite(
    workloads: list[Workload], contenders: list[Contender], repeat: int, env: Environment, embedded: bool
) -> list[dict[str, Any]]:
    """Every workload, every server, ``repeat`` interleaved rounds of every contender."""
    assert env.node is not None
    runnable = [c for c in contenders if c.key not in env.unavailable]
    pythons = {sys.executable} | ({str(VENV_PYTHON)} if env.venv_ok else set())
    bare = {python: bare_rss_mb(python) for python in pythons}
    needs_embedded = embedded and any("embedded" in w.servers for w in workloads)
    runs: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        servers = {"node": stack.enter_context(node_server(env.node))}
        if needs_embedded:
            servers["embedded"] = stack.enter_context(embedded_server())
        for workload in workloads:
            for server_name in workload.servers:
                if server_name not in servers:
                    continue
                server = servers[server_name]
                lineup = [c for c in runnable if c.takes_part(workload)]
                for rep in range(repeat):
                    for contender in lineup:
                        if not server.alive():
                            raise SystemExit(f"the {server_name} server died")
                        started = time.perf_counter()
                        result = run_one(contender, workload, server, env.node, bare)
                        wall = time.perf_counter() - started
                        log(
                            f"[{workload.key} @{server_name} {rep + 1}/{repeat}] {contender.key:>10}: "
                            f"{describe(result, workload)}  ({wall:.1f} s)"
                        )
                        runs.append(
                            {
                                "workload": workload.key,
                                "server": server_name,
                                "contender": contender.key,
                                "rep": rep,
                                "wall_s": wall,
                                "result": result,
                            }
                        )
    return runs


def draw_charts(results_file: Path, output: Path) -> list[str]:
    """Render the PNGs with the bench venv's matplotlib; return their file names."""
    done = subprocess.run(
        [str(VENV_PYTHON), str(BENCH / "charts.py"), str(results_file), str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        log(f"charts failed: {done.stderr.strip()[-500:]}")
        return []
    return done.stdout.split()


def update_docs(markdown: str, output: Path) -> None:
    """Put the tables between the markers of docs/performance.md, with image paths seen from docs/."""
    text = DOCS.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{DOCS} has no {START} ... {END} markers")
    relative = Path("..") / output.resolve().relative_to(BENCH.parent.resolve())
    body = markdown.split("\n", 1)[1].replace("](", f"]({relative.as_posix()}/").replace("\n### ", "\n#### ")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOCS.write_text(f"{head}{START}\n{body.strip()}\n{END}{tail}")
    log(f"updated {DOCS}")


def rerender(results_file: Path, output: Path | None, charts: bool, docs: bool) -> int:
    """Tables (and charts) from a saved ``latest.json``, without running anything."""
    results = json.loads(results_file.read_text())
    params = results["config"]["params"]
    workloads = [replace(w, params=params[w.key]) for w in WORKLOADS if w.key in params]
    keys = [c["key"] for c in results["contenders"]]
    contenders = [c for c in CONTENDERS if c.key in keys]
    names: list[str] = []
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        if output.resolve() != results_file.parent.resolve():
            (output / "latest.json").write_text(results_file.read_text())
        if charts:
            names = draw_charts(output / "latest.json", output)
    markdown = render(
        results["meta"], results["config"], results["runs"], workloads, contenders, results["unavailable"], names
    )
    if output is not None:
        (output / "latest.md").write_text(markdown)
        if docs:
            update_docs(markdown, output)
    sys.stdout.write(markdown)
    return 0


def compile_package() -> None:
    """Write maxsdk's bytecode caches, as installing the package would."""
    import compileall

    import maxsdk

    compileall.compile_dir(str(Path(maxsdk.__file__).parent), quiet=1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return rerender(args.render, args.output, charts=not args.no_charts, docs=args.update_docs)
    workloads = [with_params(w, args.quick, overrides(args)) for w in select_workloads(args.only)]
    contenders = select_contenders(args.contenders)
    repeat = args.repeat or (1 if args.quick else 5)
    partial = args.quick or bool(args.only) or bool(args.contenders)
    output = args.output if args.output is not None else (None if partial else RESULTS)
    want_charts = output is not None and not args.no_charts

    if any(c.runtime == "project" and c.key.startswith("maxsdk") for c in contenders) or not args.no_embedded:
        try:
            import maxsdk  # noqa: F401 - only checking that this interpreter has it
        except ImportError:
            raise SystemExit(
                f"maxsdk is not importable by {sys.executable}: install it (pip install -e .) "
                "or run the suite from the project's virtualenv (or tox -e bench)"
            ) from None
    # An installed package has its bytecode compiled (pip does it); an editable checkout run with
    # PYTHONDONTWRITEBYTECODE would compile maxsdk's lazily imported modules on every run, inside the
    # timed connect and the "idle client" memory, which no user sees.
    compile_package()
    env = Environment(node=ensure_node())
    if want_charts or any(c.runtime == "venv" for c in contenders):
        ensure_venv(env)
    else:
        env.unavailable.update({c.key: "bench venv not prepared" for c in contenders if c.runtime == "venv"})

    started_at = datetime.datetime.now(datetime.timezone.utc)
    clock = time.perf_counter()
    runs = run_suite(workloads, contenders, repeat, env, embedded=not args.no_embedded)
    config = {
        "started": started_at.strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed_min": (time.perf_counter() - clock) / 60,
        "repeat": repeat,
        "quick": args.quick,
        "params": {w.key: w.params for w in workloads},
    }
    meta = machine_info(env.node)
    charts: list[str] = []
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
        results_file = output / "latest.json"
        results_file.write_text(
            json.dumps(
                {
                    "meta": meta,
                    "config": config,
                    "contenders": [{"key": c.key, "label": c.label} for c in contenders],
                    "unavailable": env.unavailable,
                    "runs": runs,
                },
                indent=1,
            )
            + "\n"
        )
        if want_charts and env.charts:
            charts = draw_charts(results_file, output)
    markdown = render(meta, config, runs, workloads, contenders, env.unavailable, charts)
    if output is not None:
        (output / "latest.md").write_text(markdown)
        log(f"wrote {output / 'latest.md'}")
        if args.update_docs:
            update_docs(markdown, output)
    sys.stdout.write(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
