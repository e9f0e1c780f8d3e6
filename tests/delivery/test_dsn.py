"""A peer refuses some recipients with 550 5.1.1: the others are delivered
exactly once, the refused ones fail at once (no retry), and the sender
(local, alice@example.test) gets one RFC 3464 DSN in her Maildir, checked
field by field with Python's email parser.
"""
from conftest import (assert_exactly_once, assert_spool, check_dsn,
                      make_message, maildir_files, start_relay, submit,
                      wait_delivered, wait_maildir)

GOOD = ["bob@example.net", "erin@example.net"]
BAD = ["carol@example.net", "dave@example.net"]


def test_550_for_some_recipients_gives_one_dsn(workdir, start_peer):
    peer = start_peer("reject_some", reject=["carol", "dave"])
    petrel = start_relay(workdir, {"example.net": peer})
    content, msgid = make_message(subject="some will bounce")
    qid, refused = submit(petrel, ["bob@example.net", "carol@example.net",
                                   "dave@example.net", "erin@example.net"], content)
    assert refused == {}

    wait_delivered(peer, GOOD)
    wait_maildir(workdir, "alice", 1)
    petrel.stop()
    st = peer.stats()

    assert_exactly_once(st, GOOD, msgid)
    for r in BAD:
        assert st["delivered"].get(r, 0) == 0
        assert st["rcpt_attempts"][r] == 1, "a 550 is permanent: never retried"

    files = maildir_files(workdir, "alice")
    assert len(files) == 1, files
    with open(files[0], "rb") as f:
        raw = f.read()
    check_dsn(raw, failed=BAD, status="5.1.1",
              diagnostic_contains=["smtp; 550 5.1.1 <{addr}>: Recipient address "
                                   "rejected: User unknown"],
              original_message_id=msgid)
    assert_spool(petrel, qid, {"bob@example.net": "delivered",
                               "carol@example.net": "failed",
                               "dave@example.net": "failed",
                               "erin@example.net": "delivered"})
