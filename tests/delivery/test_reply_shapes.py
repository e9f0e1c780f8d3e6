"""Seed 002: replies in pieces. A multiline 354 with a pause between its
lines, and a multiline final reply written one byte at a time. Petrel must
parse replies incrementally whatever the pieces and pauses: one transaction,
each recipient exactly once, no retry, and no data sent before the whole 354.
"""
from conftest import (assert_exactly_once, assert_spool, make_message,
                      start_relay, submit, wait_delivered)

RCPTS = ["bob@example.net", "carol@example.net", "dave@example.net"]


def _deliver_once(workdir, peer, subject):
    petrel = start_relay(workdir, {"example.net": peer})
    content, msgid = make_message(subject=subject)
    qid, refused = submit(petrel, RCPTS, content)
    assert refused == {}
    wait_delivered(peer, RCPTS)
    petrel.stop()
    st = peer.stats()
    assert_exactly_once(st, RCPTS, msgid)
    # The first attempt succeeded: no retry, no second transaction.
    assert st["transaction_count"] == 1, [t["outcome"] for t in st["transactions"]]
    assert_spool(petrel, qid, {r: "delivered" for r in RCPTS})
    return st


def test_multiline_354_with_a_two_second_pause(workdir, start_peer):
    # "354-Line 1", 2 s, "354 Send message" (the seed's own example).
    peer = start_peer("multiline_354", pause=2.0)
    st = _deliver_once(workdir, peer, "multiline 354")
    # "content_before_354": petrel sent data after the first line only.
    assert st["violations"] == []


def test_multiline_final_reply_one_byte_at_a_time(workdir, start_peer):
    # "250-Ok\r\n250-queued\r\n250 as P000001\r\n", one byte per send, 50 ms apart.
    peer = start_peer("split_final", byte_delay=0.05)
    st = _deliver_once(workdir, peer, "final reply in pieces")
    assert st["transactions"][0]["final_reply"].startswith("250-Ok")
    assert st["violations"] == []
