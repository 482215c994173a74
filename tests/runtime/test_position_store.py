"""Stream positions on disk: atomic replacement, corrupt files tolerated, topics kept apart."""

from __future__ import annotations

import logging

import pytest

from maxsdk._runtime.position_store import PositionStore
from maxsdk.protocol.recovery import Position

pytestmark = pytest.mark.timeout(30)


def test_saved_positions_are_read_back_by_a_new_store(tmp_path):
    store = PositionStore(tmp_path / "p")
    assert store.load("stream:a") is None
    store.save("stream:a", Position("e", 3))
    store.save("stream:a", Position("e", 4))
    store.save("stream:b/ü", Position("f", 1))
    again = PositionStore(tmp_path / "p")
    assert again.load("stream:a") == Position("e", 4)
    assert again.load("stream:b/ü") == Position("f", 1)
    assert not list((tmp_path / "p").glob("*.tmp")), "no temporary file is left behind"
    assert (tmp_path / "p").stat().st_mode & 0o777 == 0o700
    again.forget("stream:a")
    assert again.load("stream:a") is None


@pytest.mark.parametrize("garbage", [b"", b"{not json", b'{"topic": "stream:a", "epoch": 1, "offset": 2}', b"[]"])
def test_a_corrupt_file_reads_as_no_position_and_is_moved_aside(tmp_path, caplog, garbage):
    store = PositionStore(tmp_path)
    store.save("stream:a", Position("e", 1))
    (path,) = tmp_path.glob("*.position.json")
    path.write_bytes(garbage)
    with caplog.at_level(logging.WARNING, logger="maxsdk.recovery"):
        assert store.load("stream:a") is None
    assert "unreadable" in caplog.text
    assert path.with_name(path.name + ".corrupt").exists() and not path.exists()
    store.save("stream:a", Position("e", 2))
    assert store.load("stream:a") == Position("e", 2)


def test_a_file_of_another_topic_is_not_taken(tmp_path):
    store = PositionStore(tmp_path)
    store.save("stream:a", Position("e", 1))
    (path,) = tmp_path.glob("*.position.json")
    path.write_text('{"topic": "stream:other", "epoch": "e", "offset": 9}')
    assert store.load("stream:a") is None
