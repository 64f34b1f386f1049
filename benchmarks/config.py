"""How long and how big: the full run's settings and `--quick`'s."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    reps: int
    sample_s: float
    read_sizes: tuple[int, ...]
    tree_sizes: tuple[int, ...]
    flat_sizes: tuple[int, int]
    flat_nodes_per_run: int
    original_tree_limit: int  # larger trees: the original runs in a subprocess
    original_timeout_s: float


FULL = Config(
    reps=5,
    sample_s=0.3,
    read_sizes=(1_000, 50_000),
    tree_sizes=(1_000, 10_000, 100_000),
    flat_sizes=(1_000, 100_000),
    flat_nodes_per_run=11,
    original_tree_limit=10_000,
    original_timeout_s=60,
)
QUICK = Config(
    reps=3,
    sample_s=0.08,
    read_sizes=(1_000, 5_000),
    tree_sizes=(1_000, 10_000),
    flat_sizes=(1_000, 10_000),
    flat_nodes_per_run=11,
    original_tree_limit=1_000,
    original_timeout_s=20,
)
