"""Profile one contender on one workload with py-spy and print where the time goes.

    python bench/profile.py receive-100b                 # maxsdk, the full-size workload
    python bench/profile.py rtt --contender maxsdk --set count=20000
    python bench/profile.py connect --gil --top 40

It starts the Node bench server, runs the contender's driver under
``py-spy record --threads --format raw`` (py-spy comes with the bench venv),
then folds the samples into two tables per thread: functions by *self* samples
(the code that was on the CPU) and by *inclusive* samples (the code under which
it ran). Idle threads (blocked in a system call) are not sampled unless
``--idle``; ``--gil`` keeps only samples of the thread holding the GIL, which is
what limits a pure-Python pipeline. The raw stacks are kept in
``bench/results/profiles/`` for flame graphs (e.g. speedscope or flamegraph.pl).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from environment import Environment, ensure_node, ensure_venv  # noqa: E402
from lineup import VENV, WORKLOADS, select_contenders, select_workloads, with_params  # noqa: E402
from servers import node_server  # noqa: E402

PROFILES = BENCH / "results" / "profiles"
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def short(frame: str) -> str:
    """``Engine._read_loop (maxsdk/_runtime/engine.py:666)`` -> ``Engine._read_loop (maxsdk/_runtime/engine.py)``."""
    match = FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{match['func']} ({path})"


def fold(raw: str) -> tuple[Counter[str], dict[str, Counter[str]], dict[str, Counter[str]]]:
    """Per-thread sample totals, self samples and inclusive samples by function."""
    totals: Counter[str] = Counter()
    own: dict[str, Counter[str]] = defaultdict(Counter)
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = re.sub(r"^thread \(0x[0-9a-fA-F]+\)|^thread \(\d+\)", "thread", frames[0]).removeprefix("thread: ")
        thread = re.sub(r"-\d+-", "-N-", thread)  # maxsdk-3-reader -> maxsdk-N-reader
        calls = [short(f) for f in frames[1:]]
        if not calls:
            continue
        totals[thread] += count
        own[thread][calls[-1]] += count
        for call in set(calls):
            inclusive[thread][call] += count
    return totals, own, inclusive


def report(totals: Counter[str], own: dict[str, Counter[str]], inclusive: dict[str, Counter[str]], top: int) -> str:
    """Markdown tables: threads by samples, then the top functions of each busy thread."""
    grand = sum(totals.values()) or 1
    lines = ["| thread | samples | share |", "| --- | ---: | ---: |"]
    lines += [f"| {t} | {n:,} | {n / grand:.1%} |" for t, n in totals.most_common()]
    for thread, samples in totals.most_common():
        if samples < grand * 0.02:
            continue
        lines += [
            "",
            f"#### {thread} ({samples:,} samples)",
            "",
            "| self | function | inclusive |",
            "| ---: | --- | ---: |",
        ]
        for func, count in own[thread].most_common(top):
            lines.append(f"| {count / samples:.1%} | `{func}` | {inclusive[thread][func] / samples:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__)
    parser.add_argument("workload", choices=[w.key for w in WORKLOADS])
    parser.add_argument("--contender", default="maxsdk", help="a Python contender key (default maxsdk)")
    parser.add_argument("--set", action="append", default=[], metavar="PARAM=VALUE", help="override a parameter")
    parser.add_argument("--rate", type=int, default=1000, help="samples per second (default 1000)")
    parser.add_argument("--top", type=int, default=25, help="functions per thread (default 25)")
    parser.add_argument("--gil", action="store_true", help="only sample the thread holding the GIL")
    parser.add_argument("--idle", action="store_true", help="also sample idle threads")
    args = parser.parse_args(argv)

    (contender,) = select_contenders(args.contender)
    if contender.runtime == "node":
        raise SystemExit("py-spy profiles Python contenders only")
    overrides = {args.workload: {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}}
    (workload,) = [with_params(w, False, overrides) for w in select_workloads([args.workload])]
    env = Environment(node=ensure_node())
    ensure_venv(env)
    py_spy = VENV / "bin" / "py-spy"
    PROFILES.mkdir(parents=True, exist_ok=True)
    out = PROFILES / f"{workload.key}-{contender.key}.txt"
    with node_server(env.node) as server:
        command = contender.command(workload.run, server.endpoint, workload.params)
        flags = ["--gil"] * args.gil + ["--idle"] * args.idle
        spy = [str(py_spy), "record", "--format", "raw", "--threads", "--rate", str(args.rate), *flags, "-o", str(out)]
        done = subprocess.run([*spy, "--", *command], capture_output=True, text=True, timeout=workload.timeout)
    result = [line for line in done.stdout.splitlines() if line.startswith("{")]
    print(f"## {contender.label}: {workload.title} ({json.dumps(workload.params)})\n")
    print(f"Result under the profiler (slower than unprofiled): `{result[-1] if result else done.stderr[-500:]}`\n")
    if not out.exists():
        print(done.stderr, file=sys.stderr)
        return 1
    print(report(*fold(out.read_text()), top=args.top))
    print(f"\nraw stacks: {out.relative_to(BENCH.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
