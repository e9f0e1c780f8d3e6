"""Temporary failures in the middle of a transaction, then success on retry:
every recipient exactly once. The one window where a duplicate is allowed is
the RFC 1047 one: the peer closed after receiving the end of data, before
replying; petrel cannot know whether the peer kept the message.
"""
import pytest

from conftest import (assert_exactly_once, assert_spool, make_message,
                      maildir_files, start_relay, submit, wait_delivered)

RCPTS = [f"user{i}@example.net" for i in range(5)]


def _submit_and_wait(workdir, peer, rcpts=RCPTS, subject="retry"):
    petrel = start_relay(workdir, {"example.net": peer})
    content, msgid = make_message(subject=subject)
    qid, refused = submit(petrel, rcpts, content)
    assert refused == {}
    wait_delivered(peer, rcpts)
    petrel.stop()
    return petrel, qid, msgid, peer.stats()


@pytest.mark.parametrize("at", ["rcpt", "data"])
def test_421_mid_transaction_then_success(workdir, start_peer, at):
    # rcpt: 421 4.3.0 to the 3rd RCPT (two already accepted), then close.
    # data: 421 4.3.0 to DATA, then close. Once only; the retry succeeds.
    peer = start_peer("drop_421_mid", at=at, nth=3 if at == "rcpt" else 1, times=1)
    petrel, qid, msgid, st = _submit_and_wait(workdir, peer, subject=f"421 at {at}")
    assert st["faults_fired"] == 1
    assert st["transactions"][0]["outcome"] == "dropped"
    assert_exactly_once(st, RCPTS, msgid)
    assert st["violations"] == []
    assert_spool(petrel, qid, {r: "delivered" for r in RCPTS})
    assert maildir_files(workdir, "alice") == [], "a 421 is temporary: no DSN"


def test_close_after_end_of_data_is_retried_and_logged(workdir, start_peer):
    rcpts = RCPTS[:2]
    peer = start_peer("close_after_dot", times=1)
    petrel, qid, msgid, st = _submit_and_wait(workdir, peer, rcpts, "closed after dot")
    assert st["transactions"][0]["outcome"] == "no_reply"
    # 250 from the peer exactly once; the message itself reached the peer at
    # most twice (the unanswered copy plus the retry), never more.
    assert_exactly_once(st, rcpts, msgid)
    for r in rcpts:
        assert st["received"][r] <= 2, st["received"]
    # interface.md: "no reply after the end of data: defer, logged as a
    # possible duplicate".
    assert b"possible duplicate" in petrel.read_log()
    assert_spool(petrel, qid, {r: "delivered" for r in rcpts})


def test_greylisting_451_then_success(workdir, start_peer):
    rcpts = RCPTS[:3]
    peer = start_peer("greylist", greylist=1)
    petrel, qid, msgid, st = _submit_and_wait(workdir, peer, rcpts, "greylisted")
    assert_exactly_once(st, rcpts, msgid)
    for r in rcpts:
        assert st["rcpt_attempts"][r] >= 2, "the 451 was seen and retried"
    assert st["violations"] == []
    assert_spool(petrel, qid, {r: "delivered" for r in rcpts})
    assert maildir_files(workdir, "alice") == []


def test_451_after_end_of_data_then_success(workdir, start_peer):
    rcpts = RCPTS[:2]
    peer = start_peer("tempfail_data", times=1)
    petrel, qid, msgid, st = _submit_and_wait(workdir, peer, rcpts, "451 after data")
    assert [t["outcome"] for t in st["transactions"]][:1] == ["rejected"]
    assert_exactly_once(st, rcpts, msgid)
    assert_spool(petrel, qid, {r: "delivered" for r in rcpts})
    assert maildir_files(workdir, "alice") == []
