"""How many shard workers this process may run, and how they end with it."""

from __future__ import annotations

import math
import os
from pathlib import Path


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """CPUs the container's CFS quota allows (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``),
    rounded up; None when there is no quota. A pod limited to 1 CPU on a 32-core node sees 32
    CPUs through affinity, and 32 workers under a 1 GiB limit would be killed."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def usable_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a container's CPU quota."""
    try:
        n = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        n = max(1, os.cpu_count() or 1)
    limit = cgroup_cpu_limit()
    return min(n, limit) if limit else n


def die_with_parent(parent_pid: int) -> None:
    """Process-pool initializer: end this worker when the process that started it dies.

    A ``kill -9`` of the CLI (or of a Dagster step process) leaves pool workers blocked on
    their task queue, generating for nobody, holding a sealed seed in memory. On Linux the
    kernel sends SIGKILL to the worker when its parent exits (``PR_SET_PDEATHSIG``); a parent
    that died before this ran is caught by its pid having changed."""
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)
