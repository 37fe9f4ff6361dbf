"""A small lock-aware task scheduler over several connections.

Independent load steps run on ``workers`` connections; a step runs once its dependencies are
done and never alongside a step that conflicts on one of its tables (an exclusive step takes
its tables alone, shared steps share them). The first failure aborts every other step.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from synth_assets.core.pg import connect

from .errors import LoadError

MAINTENANCE_WORK_MEM = "512MB"


@dataclass
class _Task:
    """One load step: runs in its own transaction once ``deps`` are done, holding ``tables``
    exclusively or shared; lower ``priority`` first (the biggest tables start early)."""

    key: str
    run: Callable[[psycopg.Connection], None]
    tables: frozenset[str]
    exclusive: bool
    deps: frozenset[str] = frozenset()
    priority: float = 0.0


class _Aborted(Exception):
    """Another task failed; this one stopped early."""


def _session_setup(conn: psycopg.Connection, search_path: list[str]) -> None:
    """Session settings of a worker: memory for index builds, no waiting on WAL flushes (a
    failed load is dropped whole), no statement timeout."""
    conn.execute(
        sql.SQL("SET search_path TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, search_path))
        )
    )
    conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(MAINTENANCE_WORK_MEM)))
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET statement_timeout = 0")
    conn.commit()


def _run_tasks(
    url: str, tasks: list[_Task], workers: int, search_path: list[str], abort: threading.Event
) -> dict[str, float]:
    """Run ``tasks`` on up to ``workers`` connections, respecting dependencies and table locks."""
    cond = threading.Condition()
    pending = sorted(tasks, key=lambda t: t.priority)
    keys = {t.key for t in tasks}
    for t in tasks:
        unknown = t.deps - keys
        if unknown:
            raise LoadError(f"internal: task {t.key} depends on unknown tasks {sorted(unknown)}")
    done: set[str] = set()
    shared: Counter[str] = Counter()
    excl: Counter[str] = Counter()
    running = [0]
    errors: list[tuple[str, BaseException]] = []
    durations: dict[str, float] = {}

    def can_run(t: _Task) -> bool:
        if not t.deps <= done:
            return False
        if t.exclusive:
            return not any(excl[x] or shared[x] for x in t.tables)
        return not any(excl[x] for x in t.tables)

    def take() -> _Task | None:
        with cond:
            while True:
                if errors or abort.is_set() or not pending:
                    return None
                task = next((t for t in pending if can_run(t)), None)
                if task is not None:
                    pending.remove(task)
                    for x in task.tables:
                        (excl if task.exclusive else shared)[x] += 1
                    running[0] += 1
                    return task
                if running[0] == 0:
                    errors.append(
                        (
                            "scheduler",
                            LoadError("internal: no load step can run (dependency cycle)"),
                        )
                    )
                    cond.notify_all()
                    return None
                cond.wait()

    def worker() -> None:
        try:
            conn = connect(url)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            with cond:
                errors.append(("connect", exc))
                cond.notify_all()
            return
        try:
            _session_setup(conn, search_path)
            while True:
                task = take()
                if task is None:
                    return
                t0 = time.perf_counter()
                failed: BaseException | None = None
                try:
                    task.run(conn)
                    conn.commit()
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    failed = exc
                    try:
                        conn.rollback()
                    except psycopg.Error:
                        pass
                with cond:
                    for x in task.tables:
                        (excl if task.exclusive else shared)[x] -= 1
                    running[0] -= 1
                    if failed is None:
                        done.add(task.key)
                        durations[task.key] = round(time.perf_counter() - t0, 3)
                    elif not isinstance(failed, _Aborted):
                        errors.append((task.key, failed))
                        abort.set()
                    cond.notify_all()
                if failed is not None:
                    return
        finally:
            conn.close()

    threads = [
        threading.Thread(target=worker, name=f"synth-load-{i}", daemon=True)
        for i in range(max(1, min(workers, len(tasks))))
    ]
    for th in threads:
        th.start()
    try:
        for th in threads:
            while th.is_alive():
                th.join(0.2)
    except BaseException:
        abort.set()
        for th in threads:
            th.join()
        raise
    if errors:
        key, exc = errors[0]
        if isinstance(exc, psycopg.Error):
            raise LoadError(f"load step {key} failed: {str(exc).strip().splitlines()[0]}") from exc
        raise exc
    if abort.is_set():
        raise LoadError("the load was aborted")
    return durations
