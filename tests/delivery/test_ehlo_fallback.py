"""Protocol negotiation: a peer that refuses EHLO (an RFC 821 server) gets
HELO and no ESMTP parameters; a peer without PIPELINING never gets a
command before its previous reply, even when every reply arrives one byte
at a time.
"""
from conftest import (assert_exactly_once, assert_spool, make_message,
                      start_relay, submit, wait_delivered)

RCPTS = ["bob@example.net", "carol@example.net"]


def test_ehlo_refused_then_helo(workdir, start_peer):
    peer = start_peer("no_ehlo")
    petrel = start_relay(workdir, {"example.net": peer})
    content, msgid = make_message(subject="plain old SMTP")   # 7-bit text
    qid, refused = submit(petrel, RCPTS, content)
    assert refused == {}

    wait_delivered(peer, RCPTS)
    petrel.stop()
    st = peer.stats()

    assert_exactly_once(st, RCPTS, msgid)
    # EHLO was tried and refused; the delivering session used HELO (RFC 5321
    # 3.2: fall back to HELO, on the same connection or a new one).
    assert any(c.upper().startswith("EHLO ")
               for conn in st["connections"] for c in conn["commands"])
    conn = next(c for c in st["connections"]
                if c["id"] == st["transactions"][-1]["connection"])
    assert conn["esmtp"] is False and conn["helo"]
    for t in st["transactions"]:
        assert t["mail_params"] == [], "no ESMTP parameters after HELO"
        assert all(p == [] for p in t["rcpt_params"].values())
    assert st["violations"] == []
    assert_spool(petrel, qid, {r: "delivered" for r in RCPTS})


def test_no_pipelining_every_reply_in_pieces(workdir, start_peer):
    peer = start_peer("no_pipelining", split_all=True, byte_delay=0.002,
                      sync_wait=0.02)
    petrel = start_relay(workdir, {"example.net": peer})
    content, msgid = make_message(subject="one command at a time")
    qid, refused = submit(petrel, RCPTS, content)
    assert refused == {}

    wait_delivered(peer, RCPTS)
    petrel.stop()
    st = peer.stats()

    assert_exactly_once(st, RCPTS, msgid)
    # "unsynchronized": petrel sent a command before the previous reply ended.
    assert st["violations"] == []
    assert st["transaction_count"] == 1
    assert_spool(petrel, qid, {r: "delivered" for r in RCPTS})
