"""The machine's memory and disk, and the run's budgets on them.

``memory_limit`` bounds each trial: its worker process cannot allocate that much beyond
what it holds when the trial starts (``RLIMIT_DATA``) and is stopped when its resident memory passes it, so a learner that
allocates without bound fails its trial ("out of memory (limit X GB)") instead of waking
the kernel's out-of-memory killer, which may pick the run itself. ``max_disk`` bounds the
model library's fold models: past it the worst trials lose theirs (see ``ModelLibrary``).
Both are given in GB.
"""

from __future__ import annotations

import math
import os
import shutil
from typing import Any

GB = 2**30
#: Share of the memory available when a run starts that its trials may use together; the
#: rest is the parent's (the table, the library's predictions, fusion, the fused model).
TRIALS_MEMORY_SHARE = 0.6
#: No trial gets a default limit below this (a worker holds ~0.3 GB before any fit).
MIN_DEFAULT_MEMORY = 1 * GB
#: A limit below this leaves a worker no room to fit anything.
MIN_MEMORY = 0.25 * GB
#: Share of the free disk space under the library that its fold models may take, by
#: default, and the most they take whatever the disk.
DISK_SHARE = 0.5
MAX_DEFAULT_DISK = 10 * GB


def available_memory() -> int | None:
    """Bytes of memory available to new work now (Linux ``MemAvailable``; None where it
    cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gigabytes(name: str, value: Any, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value <= 0:
        raise ValueError(f"{name} must be a positive number of GB or None (the default), got "
                         f"{value!r}")
    if value * GB < low:
        raise ValueError(f"{name}={value!r} GB is too small: at least {low / GB:.3g} GB")
    return float(value)


def memory_limit_bytes(memory_limit: Any, n_jobs: int) -> int | None:
    """Bytes each trial may use: ``memory_limit`` GB, or by default
    ``TRIALS_MEMORY_SHARE`` of the available memory shared by the ``n_jobs`` parallel
    trials (at least ``MIN_DEFAULT_MEMORY``); None where the machine's memory is unknown."""
    if memory_limit is not None:
        return int(_gigabytes("memory_limit", memory_limit, MIN_MEMORY) * GB)
    available = available_memory()
    if available is None:
        return None
    return int(max(MIN_DEFAULT_MEMORY, TRIALS_MEMORY_SHARE * available / max(1, n_jobs)))


def max_disk_bytes(max_disk: Any, directory: str) -> int | None:
    """Bytes the library's fold models may take: ``max_disk`` GB, or by default
    ``DISK_SHARE`` of the free space under ``directory``, at most ``MAX_DEFAULT_DISK``."""
    if max_disk is not None:
        return int(_gigabytes("max_disk", max_disk, 0.0) * GB)
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return MAX_DEFAULT_DISK
    return int(min(MAX_DEFAULT_DISK, DISK_SHARE * free))
