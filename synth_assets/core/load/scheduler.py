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


class _Scheduler:
    """Shared state of one run (pending steps, table locks held, results), under one condition."""

    def __init__(self, tasks: list[_Task], abort: threading.Event):
        self.cond = threading.Condition()
        self.pending = sorted(tasks, key=lambda t: t.priority)
        self.abort = abort
        self.done: set[str] = set()
        self.shared: Counter[str] = Counter()
        self.excl: Counter[str] = Counter()
        self.running = 0
        self.errors: list[tuple[str, BaseException]] = []
        self.durations: dict[str, float] = {}

    def _can_run(self, t: _Task) -> bool:
        if not t.deps <= self.done:
            return False
        if t.exclusive:
            return not any(self.excl[x] or self.shared[x] for x in t.tables)
        return not any(self.excl[x] for x in t.tables)

    def _hold(self, task: _Task, delta: int) -> None:
        for x in task.tables:
            (self.excl if task.exclusive else self.shared)[x] += delta

    def take(self) -> _Task | None:
        """The next step that can run (waiting for one), or None when the run is over."""
        with self.cond:
            while True:
                if self.errors or self.abort.is_set() or not self.pending:
                    return None
                task = next((t for t in self.pending if self._can_run(t)), None)
                if task is not None:
                    self.pending.remove(task)
                    self._hold(task, 1)
                    self.running += 1
                    return task
                if self.running == 0:
                    self.errors.append(
                        (
                            "scheduler",
                            LoadError("internal: no load step can run (dependency cycle)"),
                        )
                    )
                    self.cond.notify_all()
                    return None
                self.cond.wait()

    def finish(self, task: _Task, failed: BaseException | None, t0: float) -> None:
        """Release the step's tables; record its duration, or its error (which aborts the run)."""
        with self.cond:
            self._hold(task, -1)
            self.running -= 1
            if failed is None:
                self.done.add(task.key)
                self.durations[task.key] = round(time.perf_counter() - t0, 3)
            elif not isinstance(failed, _Aborted):
                self.errors.append((task.key, failed))
                self.abort.set()
            self.cond.notify_all()

    def worker(self, url: str, search_path: list[str]) -> None:
        """One connection's loop: take a step, run it in its own transaction, until none is left."""
        try:
            conn = connect(url)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            with self.cond:
                self.errors.append(("connect", exc))
                self.cond.notify_all()
            return
        try:
            _session_setup(conn, search_path)
            while True:
                task = self.take()
                if task is None:
                    return
                t0 = time.perf_counter()
                failed = _run_one(conn, task)
                self.finish(task, failed, t0)
                if failed is not None:
                    return
        finally:
            conn.close()


def _run_one(conn: psycopg.Connection, task: _Task) -> BaseException | None:
    """Run and commit one step; its exception (after a rollback), or None."""
    try:
        task.run(conn)
        conn.commit()
    except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
        try:
            conn.rollback()
        except psycopg.Error:
            pass
        return exc
    return None


def _run_tasks(
    url: str, tasks: list[_Task], workers: int, search_path: list[str], abort: threading.Event
) -> dict[str, float]:
    """Run ``tasks`` on up to ``workers`` connections, respecting dependencies and table locks."""
    state = _Scheduler(tasks, abort)
    keys = {t.key for t in tasks}
    for t in tasks:
        unknown = t.deps - keys
        if unknown:
            raise LoadError(f"internal: task {t.key} depends on unknown tasks {sorted(unknown)}")
    threads = [
        threading.Thread(
            target=state.worker, args=(url, search_path), name=f"synth-load-{i}", daemon=True
        )
        for i in range(max(1, min(workers, len(tasks))))
    ]
    _start_and_join(threads, abort)
    if state.errors:
        key, exc = state.errors[0]
        if isinstance(exc, psycopg.Error):
            raise LoadError(f"load step {key} failed: {str(exc).strip().splitlines()[0]}") from exc
        raise exc
    if abort.is_set():
        raise LoadError("the load was aborted")
    return state.durations


def _start_and_join(threads: list[threading.Thread], abort: threading.Event) -> None:
    """Start the workers and wait for them; on an interrupt, abort and wait for them to stop."""
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
