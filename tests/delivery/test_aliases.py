"""[local] aliases: local targets get the message in their Maildirs, remote
targets one forwarded copy, loops fail with 5.4.6 and a DSN."""
import os

from conftest import (Petrel, assert_exactly_once, check_dsn, make_message,
                      relay_config, submit, wait_delivered, wait_maildir)


def test_alias_expansion_local_remote_and_loop(workdir, start_peer):
    peer = start_peer("accept")
    with open(os.path.join(workdir, "aliases"), "w") as f:
        f.write("# team list\n"
                "team: bob, carol,\n"
                "  far@example.net\n"
                "self: self, archive\n"
                "ping: pong\n"
                "pong: ping\n")
    extra = 'aliases = "aliases"\n'
    petrel = Petrel(workdir, extra_config=relay_config(
        {"example.net": peer}, extra=extra)).start()
    content, msgid = make_message(subject="to the team")
    qid, refused = submit(petrel, ["team@example.test", "self@example.test"], content)
    assert qid and not refused
    for user in ("bob", "carol", "self", "archive"):
        wait_maildir(workdir, user)
    st = wait_delivered(peer, ["far@example.net"])
    # The loop: a DSN to alice with 5.4.6.
    loop_content, _ = make_message(subject="loop")
    submit(petrel, ["ping@example.test"], loop_content)
    [dsn_path] = wait_maildir(workdir, "alice")
    petrel.stop()
    assert_exactly_once(peer.stats(), ["far@example.net"], msgid)
    with open(dsn_path, "rb") as f:
        raw = f.read()
    assert b"Status: 5.4.6" in raw
    assert b"Action: failed" in raw
