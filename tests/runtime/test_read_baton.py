"""The read baton's states: who may read a connection, and when the reader takes it back."""

from __future__ import annotations

import threading
import time

from maxsdk._runtime import read_baton
from maxsdk._runtime.read_baton import CALLER, LENT, READER, ReadBaton


def test_a_connection_is_read_by_the_reader_until_it_is_lent():
    baton = ReadBaton()
    assert baton.state == READER
    assert not baton.take()
    baton.lend()
    assert baton.state == LENT
    assert baton.take()
    assert baton.state == CALLER
    assert not baton.take()  # one caller at a time
    assert (baton.lends, baton.takes) == (1, 1)


def test_a_caller_hands_back_as_lent_when_nothing_else_waits_and_to_the_reader_otherwise():
    baton = ReadBaton()
    baton.lend()
    assert baton.take()
    baton.hand_back(to_reader=False)
    assert baton.state == LENT
    assert baton.take()  # the next push takes it again without the reader
    baton.hand_back(to_reader=True)
    assert baton.state == READER
    assert baton.wait_turn() is None


def test_the_reader_takes_back_a_lent_connection_nobody_took_after_the_idle_time():
    baton = ReadBaton()
    baton.lend()
    started = time.monotonic()
    assert baton.wait_turn() is None
    assert time.monotonic() - started >= read_baton.IDLE * 0.9
    assert baton.state == READER
    assert not baton.take()


def test_what_ended_the_connection_reaches_the_reader():
    baton = ReadBaton()
    baton.lend()
    assert baton.take()
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(baton.wait_turn()))
    reader.start()
    baton.hand_back(to_reader=False, end=(1006, "closed without a close frame"))
    reader.join(5)
    assert got == [(1006, "closed without a close frame")]
    assert baton.state == READER
    assert baton.end is None


def test_the_reader_waits_while_a_caller_reads_however_long():
    baton = ReadBaton()
    baton.lend()
    assert baton.take()
    done = threading.Event()
    reader = threading.Thread(target=lambda: (baton.wait_turn(), done.set()))
    reader.start()
    assert not done.wait(20 * read_baton.IDLE)  # a reading caller is never preempted
    baton.hand_back(to_reader=True)
    assert done.wait(5)
    reader.join(5)


def test_recall_gives_a_lent_connection_back_and_leaves_a_reading_caller_alone():
    baton = ReadBaton()
    baton.lend()
    baton.recall()
    assert baton.state == READER
    baton.lend()
    assert baton.take()
    baton.recall()
    assert baton.state == CALLER
    baton.reset()
    assert baton.state == READER
