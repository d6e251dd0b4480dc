"""A catch-up spaces out Python's garbage collections while it runs, and gives the thresholds back after."""

from __future__ import annotations

import gc

import pytest

from maestro_dagster.gc_tuning import GC_THRESHOLD, fewer_collections


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_collections_are_spaced_out_during_a_catch_up_and_restored_after(thresholds):
    with fewer_collections():
        assert gc.get_threshold() == (GC_THRESHOLD, 10, 10)
        with fewer_collections():  # a second catch-up of the same process (another thread)
            assert gc.get_threshold()[0] == GC_THRESHOLD
        assert gc.get_threshold()[0] == GC_THRESHOLD, "the first one is still going"
    assert gc.get_threshold() == (700, 10, 10)


def test_thresholds_are_restored_when_the_catch_up_fails(thresholds):
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("database went away")
    assert gc.get_threshold() == (700, 10, 10)
