"""Seed 003: invalid recipients must give clear, standard outcomes, and the
rest of the queue keeps flowing.

Message 1 has four recipients:
  bad..dots@example.net   syntactically invalid: refused at submission, 501 5.1.3
  "odd local"@example.net odd but valid (quoted local-part): relayed as written
  x@bad.example           routed to a port where nothing listens: deferred, pending
  nobody@example.net      the peer says 550 5.1.1: failed, one DSN to the sender
Message 2, submitted after it, to good@example.net, must be delivered while
message 1 still has a recipient pending.
"""
from conftest import (assert_exactly_once, assert_spool, check_dsn,
                      free_port, make_message, maildir_files, start_relay,
                      submit, wait_delivered, wait_maildir)

ODD = '"odd local"@example.net'


def test_invalid_recipients_do_not_stall_the_queue(workdir, start_peer):
    peer = start_peer("reject_some", reject=["nobody"])
    dead = free_port()          # nothing listens here
    petrel = start_relay(workdir, {"example.net": peer,
                                   "bad.example": f"127.0.0.1:{dead}"})

    content1, msgid1 = make_message(subject="message 1, odd recipients")
    qid1, refused = submit(petrel, ["bad..dots@example.net", ODD, "x@bad.example",
                                    "nobody@example.net"], content1)
    assert list(refused) == ["bad..dots@example.net"]
    code, text = refused["bad..dots@example.net"]
    assert code == 501 and text.startswith("5.1.3"), (code, text)

    content2, msgid2 = make_message(subject="message 2, good")
    qid2, refused = submit(petrel, ["good@example.net"], content2)
    assert refused == {}

    wait_delivered(peer, [ODD, "good@example.net"])
    wait_maildir(workdir, "alice", 1)       # the DSN for nobody@
    petrel.stop()
    st = peer.stats()

    assert_exactly_once(st, [ODD], msgid1)
    assert st["delivered"]["good@example.net"] == 1
    assert st["delivered"].get("nobody@example.net", 0) == 0
    assert "bad..dots@example.net" not in st["rcpt_attempts"]
    assert "x@bad.example" not in st["rcpt_attempts"]

    m1 = assert_spool(petrel, qid1, {ODD: "delivered", "x@bad.example": "pending",
                                     "nobody@example.net": "failed"})
    assert m1 is not None, "message 1 still has a pending recipient"
    # Tried and deferred, with the connection error kept as its last reply
    # (what `petrel queue list` shows as "last error").
    pending = next(d for d in m1["recipients_detail"] if d["address"] == "x@bad.example")
    assert pending["attempts"] >= 1 and pending["last_reply"], pending
    assert_spool(petrel, qid2, {"good@example.net": "delivered"})

    files = maildir_files(workdir, "alice")
    assert len(files) == 1, "one DSN, for nobody@ only (a deferral is not a failure)"
    with open(files[0], "rb") as f:
        check_dsn(f.read(), failed=["nobody@example.net"], status="5.1.1",
                  diagnostic_contains=["550 5.1.1"], original_message_id=msgid1)
