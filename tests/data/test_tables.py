"""Tests of `modeling_manmoe.data.tables`: the readers build their Datasets with the system allocator and leave
pyarrow's default memory pool as they found it."""

from __future__ import annotations

import pyarrow
import pytest

from modeling_manmoe.data import CONLL_NER_LABELS, ner_features, read_conll
from modeling_manmoe.data.tables import dataset_from_columns, system_arrow_allocator
from modeling_manmoe.errors import DataFormatError


@pytest.fixture
def default_pool():
    """A default pool other than the system allocator (mimalloc or jemalloc, whichever this pyarrow has), so that
    restoring it is observable; the test's own default is restored afterwards."""
    original = pyarrow.default_memory_pool()
    for make in (pyarrow.mimalloc_memory_pool, pyarrow.jemalloc_memory_pool):
        try:
            pool = make()
        except NotImplementedError:
            continue
        pyarrow.set_memory_pool(pool)
        yield pool
        pyarrow.set_memory_pool(original)
        return
    pytest.skip("this pyarrow has neither mimalloc nor jemalloc: only the system allocator")


def many_sentences(count: int) -> dict[str, list]:
    tokens = [[f"word{i}", f"other{i}", "."] for i in range(count)]
    return {"tokens": tokens, "ner_tags": [[1, 0, 0]] * count, "language": ["en"] * count}


def test_the_dataset_is_not_allocated_by_the_default_pool(default_pool):
    before = default_pool.bytes_allocated()
    system_before = pyarrow.system_memory_pool().bytes_allocated()
    dataset = dataset_from_columns(many_sentences(5_000), ner_features(CONLL_NER_LABELS))
    assert dataset["tokens"][4_999] == ["word4999", "other4999", "."]
    assert default_pool.bytes_allocated() == before
    assert pyarrow.system_memory_pool().bytes_allocated() > system_before
    assert pyarrow.default_memory_pool().backend_name == default_pool.backend_name


def test_read_conll_allocates_nothing_in_the_default_pool_and_restores_it(tmp_path, default_pool):
    path = tmp_path / "eng.train"
    path.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\n" * 500, encoding="utf-8")
    before = default_pool.bytes_allocated()
    dataset = read_conll(path, "en")
    assert dataset["tokens"][:2] == [["EU", "rejects"], ["Peter", "EU", "rejects"]]
    assert default_pool.bytes_allocated() == before
    assert pyarrow.default_memory_pool().backend_name == default_pool.backend_name


def test_the_default_pool_is_restored_after_an_error(default_pool):
    with pytest.raises(DataFormatError), system_arrow_allocator():
        assert pyarrow.default_memory_pool().backend_name == "system"
        raise DataFormatError("a reader's error inside the block")
    assert pyarrow.default_memory_pool().backend_name == default_pool.backend_name
