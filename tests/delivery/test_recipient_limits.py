"""Seeds 000, 001, 004: a peer that takes fewer recipients than we send.

Petrel sends one message to 250 recipients; the peer refuses every RCPT past
the 100th of a transaction, with 452 4.5.3 (RFC 5321), 552 5.5.3 (the RFC 821
code, seed 001) or 522 (Exchange 5.0, seed 000). interface.md: petrel sends
the data to the recipients already accepted, then carries on with the rest
in a new transaction on the same connection; never a failure, never a DSN,
every recipient exactly once.
"""
import pytest

from conftest import (SENDER, assert_exactly_once, assert_spool,
                      delivered_transactions, maildir_files, make_message,
                      start_relay, submit, wait_delivered)

RCPTS_250 = [f"user{i:03d}@example.net" for i in range(250)]


@pytest.mark.parametrize("code", [452, 552, 522])
def test_250_recipients_to_a_peer_that_refuses_after_100(workdir, start_peer, code):
    peer = start_peer("rcpt_limit", limit=100, code=code)
    # petrel's own batch (1000) is above 250: only the peer's refusals split it.
    petrel = start_relay(workdir, {"example.net": peer},
                         max_recipients_per_transaction=1000)
    content, msgid = make_message(subject=f"250 recipients, peer says {code}")
    qid, refused = submit(petrel, RCPTS_250, content)
    assert refused == {}

    wait_delivered(peer, RCPTS_250)
    petrel.stop()
    st = peer.stats()

    assert_exactly_once(st, RCPTS_250, msgid)
    assert st["limit_refusals"] > 0, "the peer's limit was never reached"
    txns = delivered_transactions(st)
    assert all(len(t["rcpts_accepted"]) <= 100 for t in txns)
    assert len(txns) >= 3
    # interface.md: "carry on with the rest in a new transaction on the same
    # connection".
    assert len({t["connection"] for t in txns}) == 1, [t["connection"] for t in txns]
    assert st["violations"] == []
    assert_spool(petrel, qid, {r: "delivered" for r in RCPTS_250})
    assert maildir_files(workdir, SENDER.split("@")[0]) == [], "no DSN for a limit"


def test_limits_rcptmax_lowers_the_batch(workdir, start_peer):
    """RFC 9422: the peer advertises LIMITS RCPTMAX=10; petrel (batch 100)
    must never send an 11th RCPT in a transaction."""
    rcpts = [f"user{i:02d}@example.net" for i in range(25)]
    peer = start_peer("limits_rcptmax", rcptmax=10)
    petrel = start_relay(workdir, {"example.net": peer},
                         max_recipients_per_transaction=100)
    content, msgid = make_message(subject="25 recipients, RCPTMAX=10")
    qid, refused = submit(petrel, rcpts, content)
    assert refused == {}

    wait_delivered(peer, rcpts)
    petrel.stop()
    st = peer.stats()

    assert_exactly_once(st, rcpts, msgid)
    # A "rcptmax_exceeded" violation would mean petrel ignored the limit.
    assert st["violations"] == []
    assert st["limit_refusals"] == 0
    txns = delivered_transactions(st)
    assert all(len(t["rcpts_accepted"]) <= 10 for t in txns)
    assert len(txns) == 3
    assert_spool(petrel, qid, {r: "delivered" for r in rcpts})
    assert maildir_files(workdir, "alice") == []
