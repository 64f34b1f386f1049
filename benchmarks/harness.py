"""Timing and reporting: interleaved samples, medians, plain-text/markdown tables."""

from __future__ import annotations

import gc
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Sample:
    calls: int
    seconds: float
    failures: int = 0
    errors: list[str] = field(default_factory=list)
    cpu: float = 0.0
    """The process's CPU seconds over the sample (all threads), where measured."""

    @property
    def rate(self) -> float:
        return self.calls / self.seconds if self.seconds else float("nan")


def time_calls(step: Callable[[], int], min_seconds: float) -> Sample:
    """Repeat `step` (which returns how many public calls it made) until at
    least `min_seconds` have passed; at least once."""
    gc.collect()
    calls = 0
    start = time.perf_counter()
    while True:
        calls += step()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return Sample(calls, elapsed)


def time_threads(step: Callable[[], int], seconds: float, threads: int) -> Sample:
    """`threads` threads repeat `step` until `seconds` have passed; a step
    that raises counts as one failed call and the thread goes on."""
    gc.collect()
    calls = [0] * threads
    failures = [0] * threads
    errors: list[str] = []
    barrier = threading.Barrier(threads + 1)
    deadline = 0.0

    def worker(t: int) -> None:
        barrier.wait()
        while time.perf_counter() < deadline:
            try:
                calls[t] += step()
            except Exception as e:
                failures[t] += 1
                if len(errors) < 5:
                    errors.append(f"{type(e).__name__}: {str(e).splitlines()[0][:150]}")

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    start = time.perf_counter()
    deadline = start + seconds
    barrier.wait()
    for t in pool:
        t.join()
    return Sample(sum(calls), time.perf_counter() - start, sum(failures), errors)


def interleaved(samplers: dict[str, Callable[[], Sample]], reps: int) -> dict[str, list[Sample]]:
    """Run each sampler once per repetition, in turn (A, B, C, A, B, C, ...),
    so drift in the machine's speed hits every contender alike."""
    results: dict[str, list[Sample]] = {name: [] for name in samplers}
    for _ in range(reps):
        for name, sampler in samplers.items():
            results[name].append(sampler())
    return results


def median_rate(samples: list[Sample]) -> float:
    return statistics.median(s.rate for s in samples)


def repeat(fn: Callable[[], object]) -> Callable[[], int]:
    """`fn` as a step of `time_calls`: one public call per step."""

    def step() -> int:
        fn()
        return 1

    return step


def warm_sampler(call: Callable[[], object], seconds: float) -> Callable[[], Sample]:
    """A sampler timing `call` for `seconds`, after one untimed call to warm it up."""
    step = repeat(call)
    step()
    return lambda: time_calls(step, seconds)


def interleaved_rates(
    calls: Mapping[str, Callable[[], object]], seconds: float, reps: int
) -> dict[str, float | None]:
    """Median calls/s of each contender's call, its samples interleaved with the others'."""
    samplers = {name: warm_sampler(call, seconds) for name, call in calls.items()}
    return {name: median_rate(v) for name, v in interleaved(samplers, reps).items()}


def mix_rate(rates: Iterable[float | None]) -> float | None:
    """Calls/s of a mix making each of these calls once: the mean time per
    call, inverted (the harmonic mean of the rates). None if any is unknown."""
    known = list(rates)
    if not known or any(not r for r in known):
        return None
    return len(known) / sum(1 / r for r in known if r)


# Formatting


def fmt_rate(rate: float | None) -> str:
    if rate is None:
        return "n/a"
    if rate >= 100:
        return f"{rate:,.0f}"
    if rate >= 1:
        return f"{rate:.1f}"
    return f"{rate:.3f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "n/a"
    return f"{a / b:.2f}x"


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        widths = [
            max(len(r[i]) for r in [self.headers, *self.rows]) for i in range(len(self.headers))
        ]

        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
            return "  ".join([first, *rest]).rstrip()

        out = [self.title, "-" * len(self.title), line(self.headers)]
        out += [line(r) for r in self.rows]
        out += [f"  note: {n}" for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"### {self.title}", ""]
        out.append("| " + " | ".join(self.headers) + " |")
        out.append("|" + "|".join(["---"] + ["---:"] * (len(self.headers) - 1)) + "|")
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)


# The machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def _git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "-"
    return rev


def machine_lines() -> list[str]:
    packages = ", ".join(
        f"{d} {_version(d)}"
        for d in (
            "dag-provenance",
            "lythonic",
            "sqlalchemy",
            "alembic",
            "pydantic",
            "psycopg",
            "pymysql",
        )
    )
    return [
        f"date:     {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine:  {_cpu_model()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}",
        f"python:   {platform.python_implementation()} {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}",
        f"packages: {packages}",
        f"repo:     {_git_revision()}",
    ]


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
