"""Resident memory of this process, as the benchmarks report it (Linux)."""

from __future__ import annotations

import resource


def peak_rss_mib() -> float:
    """The process's peak resident set so far (`getrusage` ru_maxrss, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_mib(field: str) -> float | None:
    """One `Rss*` field of /proc/self/status (e.g. "RssAnon", "RssFile"), in MiB; None where the kernel does not
    report it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def resident_file_mib() -> float | None:
    """The file-backed part of the current resident set (`RssFile`: mostly the shared libraries' pages), in MiB,
    rounded to 0.1; None where the kernel does not report it. How many of a library's pages a process maps depends on
    the page cache's state, not on the code: on one machine the same imports held 238 MiB of them in the first hour
    after installing and 141 MiB later (benchmarks/README.md)."""
    mib = resident_mib("RssFile")
    return None if mib is None else round(mib, 1)
