"""Building a reader's `datasets.Dataset` from its columns: what every reader of `modeling_manmoe.data` ends with."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import datasets
import pyarrow


@contextmanager
def system_arrow_allocator() -> Iterator[None]:
    """Make the C library's malloc pyarrow's default memory pool inside the block, and restore the previous pool
    after it (also on error).

    pyarrow's usual default, mimalloc, keeps per-thread pages resident once it has served any allocation: building
    the four ~2,000-sentence Datasets of the training benchmark left ~34 MiB more resident memory behind, for ~1 MiB
    of Arrow data, against ~12 MiB with malloc (benchmarks/README.md). Buffers remember the pool that allocated them,
    so the tables built here are freed correctly whatever the default is later.
    """
    previous = pyarrow.default_memory_pool()
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    try:
        yield
    finally:
        pyarrow.set_memory_pool(previous)


def dataset_from_columns(columns: dict[str, list[Any]], features: datasets.Features) -> datasets.Dataset:
    """`datasets.Dataset.from_dict(columns, features=features)`, its Arrow arrays allocated by the system allocator
    (`system_arrow_allocator`), so that reading a small file does not leave tens of MiB of allocator pages behind."""
    with system_arrow_allocator():
        return datasets.Dataset.from_dict(columns, features=features)
