"""lythonic DAGs for the real-client tests: node functions and DAG builders.

The node functions live at module level because lythonic registers them by
import path. `FAIL_ONCE` / `PAUSE_ONCE` hold tokens naming runs whose node
must fail (or pause) once: each test adds its own unique token, so tests
never see each other's.
"""

from __future__ import annotations

from lythonic.compose.dag_runner import DagPause
from lythonic.compose.namespace import Dag

FAIL_ONCE: set[str] = set()
PAUSE_ONCE: set[str] = set()


# Node functions (module level: lythonic registers them by import path)


def load(path: str) -> dict:  # type: ignore[type-arg]
    return {"path": path, "rows": [3, 1, 2]}


def count(data: dict) -> int:  # type: ignore[type-arg]
    return len(data["rows"])


def report(n: int) -> str:
    return f"{n} rows"


def start(n: int) -> int:
    return n


def double(n: int) -> int:
    return 2 * n


def square(n: int) -> int:
    return n * n


def total(values: list[int]) -> int:
    return sum(values)


def explode(n: int) -> int:
    raise ValueError(f"cannot handle {n}")


def split(text: str) -> list:  # type: ignore[type-arg]
    return text.split()


def shout(word: str) -> str:
    if word == "boom":
        raise RuntimeError("a word exploded")
    return word.upper() + "!"


def join(words: list) -> str:  # type: ignore[type-arg]
    return " ".join(words)


def annotate(text: str) -> str:
    return f"<{text}>"


def seed(token: str) -> str:
    return token


def flaky(token: str) -> str:
    if token in FAIL_ONCE:
        FAIL_ONCE.discard(token)
        raise RuntimeError(f"transient failure for {token}")
    return token + ":ok"


def pausing(token: str) -> str:
    if token in PAUSE_ONCE:
        PAUSE_ONCE.discard(token)
        raise DagPause()
    return token + ":resumed"


def finish(token: str) -> str:
    return token + ":done"


# DAG builders


def linear_dag() -> Dag:
    dag = Dag()
    dag.node(load) >> dag.node(count) >> dag.node(report)
    return dag


def fan_dag() -> Dag:
    dag = Dag()
    s, d, q, t = dag.node(start), dag.node(double), dag.node(square), dag.node(total)
    s >> d
    s >> q
    d >> t
    q >> t
    return dag


def failing_dag() -> Dag:
    dag = Dag()
    dag.node(start) >> dag.node(explode) >> dag.node(double)
    return dag


def shout_dag() -> Dag:
    sub = Dag()
    sub.node(shout)
    return sub


def map_dag() -> Dag:
    dag = Dag()
    dag.node(split) >> dag.map(shout_dag(), label="chunks") >> dag.node(join)
    return dag


def call_dag() -> Dag:
    sub = Dag()
    sub.node(annotate) >> sub.node(shout)
    dag = Dag()
    dag.node(seed) >> dag.node(sub, label="enrich") >> dag.node(finish)
    return dag


def nested_dag() -> Dag:
    """A CallNode whose sub-DAG maps over words: grandchild runs."""
    inner = Dag()
    inner.node(split) >> inner.map(shout_dag(), label="words") >> inner.node(join)
    dag = Dag()
    dag.node(seed) >> dag.node(inner, label="outer")
    return dag


def flaky_dag() -> Dag:
    dag = Dag()
    dag.node(seed) >> dag.node(flaky) >> dag.node(finish)
    return dag


def pausing_dag() -> Dag:
    dag = Dag()
    dag.node(seed) >> dag.node(pausing) >> dag.node(finish)
    return dag
