"""Resident memory of this process, as the benchmarks report it (Linux)."""

from __future__ import annotations

import resource


def peak_rss_mib() -> float:
    """The process's peak resident set so far (`getrusage` ru_maxrss, KiB on Linux), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_file_mib() -> float | None:
    """The file-backed part of the current resident set (`RssFile` of /proc/self/status: mostly the shared
    libraries' pages), in MiB; None where the kernel does not report it. How many of a library's pages a process
    maps depends on the page cache's state, not on the code: on one machine the same imports held 238 MiB of them
    in the first hour after installing and 141 MiB later (benchmarks/README.md)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssFile:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None
