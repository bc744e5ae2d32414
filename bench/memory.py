"""Peak memory of a sync run: does it follow the work of the run, or the history behind it?

Two modes, each a series of sync runs in this process (the Brightpearl and Loop sandboxes on
loopback in a child process, so what is measured is the sync's own memory):

* ``history`` (default; sizes 1000 10000): before each run the connection holds H finished
  returns (`tests/support/history.py`, as a sync leaves them) and Loop lists `--new` (50) new
  approved returns; the run credits them. Target: the same peak at every H.
* ``new`` (e.g. ``--mode new 100 1000``): each run credits N new returns. Target: a peak that
  does not grow by tens of KB per return (what a run keeps per return: events, printed lines,
  raw payloads).

Each size runs on a Brightpearl account, Loop sandbox and connection of its own.
Per run: the tracemalloc peak above what was allocated when it started (every Python
allocation of this process: the sync, Django, the HTTP clients), what is still allocated
after it (kept), the process's peak RSS during it (VmHWM, reset before the run; it includes
tracemalloc's own bookkeeping and never falls below what seeding the history left), and the
seconds it took; with ``--steps``, each sync step's peak above the run's start and what was
already held when the step began (MB). Last line: the peak at
the largest size against the smallest (target ≤ 1.10x).

    python bench/memory.py [H ...] [--new 50]        SQLite in a temp dir unless DATABASE_URL
    python bench/memory.py --mode new [N ...]        is set; loopback only
    python bench/memory.py --mode new --steps 200 1000   (which step the peak comes from)
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

from common import account_with_orders, in_process_django, loop_connection

in_process_django()

from django.core.management import call_command  # noqa: E402
from django.db import connection as db  # noqa: E402

from brightpearl.sandbox import SandboxServer  # noqa: E402
from connector.models import Connection, SyncRun  # noqa: E402
from connector.services import sync  # noqa: E402
from connector.services.sync import run_sync  # noqa: E402
from returns.platforms.loop.sandbox import LoopSandbox  # noqa: E402
from tests.support.history import as_if_an_hour_passed, seed_history  # noqa: E402

MB = 1024 * 1024


def _serve_sandboxes(pipe) -> None:
    """The child: a Brightpearl sandbox, and Loop sandboxes made and seeded on request."""
    bp = SandboxServer(port=0).start()
    pipe.send((bp.url, bp.api_url_template))
    loops: list[LoopSandbox] = []
    while True:
        op, *args = pipe.recv()
        if op == "loop":
            loops.append(LoopSandbox(port=0).start())
            pipe.send((len(loops) - 1, loops[-1].api_url, loops[-1].api_key))
        elif op == "returns":
            index, returns = args
            for fields in returns:
                loops[index].add_return(**fields)
            pipe.send(len(returns))
        else:
            for loop in loops:
                loop.stop()
            bp.stop()
            pipe.send("stopped")
            return


class Sandboxes:
    """The sandboxes in a child process (forked before any of them starts a thread)."""

    def __init__(self):
        context = multiprocessing.get_context("fork")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=_serve_sandboxes, args=(child,), daemon=True)
        self.process.start()
        self.bp_url, self.bp_api_url = self.pipe.recv()

    def call(self, *message):
        self.pipe.send(message)
        return self.pipe.recv()

    def new_loop(self) -> SimpleNamespace:
        index, api_url, api_key = self.call("loop")
        return SimpleNamespace(index=index, api_url=api_url, api_key=api_key)

    def stop(self) -> None:
        self.call("stop")
        self.process.join(timeout=10)


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets the process's peak RSS (VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class StepPeaks:
    """Each sync step's tracemalloc peak above the run's start (`--steps`): which step the
    run's peak comes from. The run's own peak is the largest of them (and of what lies
    between steps), so wrapping the steps does not change the figure."""

    def __init__(self):
        self.start, self.peak, self.steps = 0, 0, {}

    def begin(self, start: int) -> None:
        self.start, self.peak, self.steps = start, 0, {}

    def _take_peak(self) -> int:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        self.peak = max(self.peak, peak)
        return peak

    def wrap(self, name: str, step):
        def measured(ctx, *args, **kwargs):
            self._take_peak()
            held, _ = tracemalloc.get_traced_memory()
            try:
                return step(ctx, *args, **kwargs)
            finally:
                peak = self._take_peak() - self.start
                before = self.steps.get(name, (0, 0))
                self.steps[name] = (held - self.start, max(before[1], peak))

        return measured

    def install(self) -> None:
        sync.STEPS = tuple((name, self.wrap(name, step)) for name, step in sync.STEPS)

    def line(self) -> str:
        """name peak (held when it started), MB above the run's start."""
        return "  steps, peak (held at start) MB: " + ", ".join(
            f"{n} {p / MB:.1f} ({h / MB:.1f})" for n, (h, p) in self.steps.items()
        )


STEP_PEAKS: StepPeaks | None = None


def measured_run(connection) -> tuple[float, float, float, float, SyncRun]:
    """(peak above start MB, kept MB, peak RSS MB, seconds, run) of one sync."""
    gc.collect()
    start, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    if STEP_PEAKS is not None:
        STEP_PEAKS.begin(start)
    reset_peak_rss()
    started = time.perf_counter()
    run = run_sync(connection, trigger=SyncRun.Trigger.COMMAND).run
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    if STEP_PEAKS is not None:
        peak = max(peak, STEP_PEAKS.peak)
    rss = peak_rss_mb()
    gc.collect()
    kept, _ = tracemalloc.get_traced_memory()
    return (peak - start) / MB, (kept - start) / MB, rss, elapsed, run


def one_run(sandboxes: Sandboxes, code: str, history: int, offset: int, count: int):
    """A connection with `history` past returns and `count` new ones on Loop: its measured
    sync. On a Brightpearl account, Loop sandbox and connection of its own, so no run sees an
    earlier run's returns or credits (they would be in the windows of the platform listing and
    of the duplicate check)."""
    account_with_orders(sandboxes.bp_url, sandboxes.bp_api_url, code, count, net="10", tax="2")
    loop = sandboxes.new_loop()
    connection = loop_connection(code, code, "t", loop)
    seed_history(connection, history, offset)
    returns = [
        {
            "order_name": f"#{i}",
            "order_id": f"shop-{i}",
            "currency": "GBP",
            "fire": False,
            "lines": [{"sku": "SKU-A"}],
        }
        for i in range(count)
    ]
    sandboxes.call("returns", loop.index, returns)
    as_if_an_hour_passed(connection)
    if db.vendor == "postgresql":  # as autovacuum would after a bulk load
        with db.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    return measured_run(connection)


def main(mode: str, sizes: list[int], new: int) -> None:
    call_command("migrate", verbosity=0)
    fresh = [new] * len(sizes) if mode == "history" else sizes
    sandboxes = Sandboxes()
    Connection.objects.filter(name__startswith="memory").delete()  # an earlier run's
    tracemalloc.start()
    one_run(sandboxes, "memorywarm", 0, 0, 5)  # what the first sync of a process sets up
    print(
        f"{'history':>8} {'new':>6} {'peak MB':>8} {'kept MB':>8} {'peak RSS MB':>12} "
        f"{'seconds':>8} {'credits':>8}",
        flush=True,
    )
    seeded, results = 0, []
    for step, (size, count) in enumerate(zip(sizes, fresh, strict=True)):
        history = size if mode == "history" else 0
        peak, kept, rss, elapsed, run = one_run(sandboxes, f"memory{step}", history, seeded, count)
        seeded += history
        credits = run.counts.get("credit_succeeded", 0)
        results.append((history, count, peak))
        print(
            f"{history:>8} {count:>6} {peak:>8.1f} {kept:>8.1f} {rss:>12.1f} {elapsed:>8.1f} "
            f"{credits:>8}",
            flush=True,
        )
        if STEP_PEAKS is not None:
            print(STEP_PEAKS.line(), flush=True)
    tracemalloc.stop()
    sandboxes.stop()
    (h0, n0, p0), (h1, n1, p1) = results[0], results[-1]
    what = "past returns" if mode == "history" else "new returns"
    small, large = (h0, h1) if mode == "history" else (n0, n1)
    print(
        f"peak memory of a sync at {large} vs {small} {what}: {p1:.1f} MB vs {p0:.1f} MB = "
        f"{p1 / p0:.2f}x (target flat: <= 1.10x)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sizes", nargs="*", type=int)
    parser.add_argument("--mode", choices=("history", "new"), default="history")
    parser.add_argument("--new", type=int, default=50, help="new returns per run (history)")
    parser.add_argument(
        "--steps", action="store_true", help="also print each step's peak above the run's start"
    )
    args = parser.parse_args()
    if args.steps:
        STEP_PEAKS = StepPeaks()
        STEP_PEAKS.install()
    default = [1000, 10000] if args.mode == "history" else [100, 1000]
    main(args.mode, args.sizes or default, args.new)
