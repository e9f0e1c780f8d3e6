"""The operator commands of interface.md on a running server: `petrel queue
list/show/hold/release/flush/bounce/delete [--json]`.

A message to down.example, routed to a loopback port where nothing listens,
stays pending with the connection error as its last reply. The commands
talk to the server over its admin socket; against a stopped server they say
so and exit non-zero; a malformed or unknown queue ID is a clear error.
Waits are bounded polls; nothing asserts on timing.
"""
import json
import os
import re
import time

import pytest

from conftest import (SENDER, Dsn, Petrel, free_port, make_message,
                      maildir_files, relay_config, submit, wait_for,
                      wait_maildir)

RCPTS = ["bob@down.example", "carol@down.example"]
QUEUE_ID = re.compile(r"^[0-9A-Z]{16}$")
UNKNOWN_ID = "0000000000000000"     # well-formed, never issued


def start_down(workdir, retry="1h"):
    """petrel with down.example routed to a closed port. With retry "1h"
    nothing is attempted after the first, immediate attempt unless the
    operator asks (flush, release)."""
    dead = free_port()
    cfg = relay_config({"down.example": f"127.0.0.1:{dead}"}).replace(
        'retry_schedule = ["1s"]', f'retry_schedule = ["{retry}"]')
    return Petrel(workdir, extra_config=cfg).start(), dead


def queue_json(petrel):
    r = petrel.cli("queue", "list", "--json")
    return json.loads(r.stdout)


def show_json(petrel, qid):
    r = petrel.cli("queue", "show", qid, "--json")
    return json.loads(r.stdout)


def attempts(petrel, qid):
    m = show_json(petrel, qid)["message"]
    return {d["address"]: d["attempts"] for d in m["recipients_detail"]}


def submit_pending(petrel, subject="queue cli"):
    """Submits one message to RCPTS; waits until its first attempt failed
    (both recipients pending, attempts >= 1, last_reply set)."""
    content, msgid = make_message(subject=subject)
    qid, refused = submit(petrel, RCPTS, content)
    assert refused == {} and QUEUE_ID.match(qid), (qid, refused)

    def tried():
        for m in queue_json(petrel):
            if m["id"] == qid:
                d = m["recipients_detail"]
                return all(x["attempts"] >= 1 and x["last_reply"] for x in d) and m
        return None
    return qid, msgid, wait_for(tried, 30, "the first attempt to fail")


def test_pending_message_in_list_and_show(workdir):
    petrel, dead = start_down(workdir)
    qid, msgid, m = submit_pending(petrel, subject="list and show")

    # queue list --json: id, sender, recipients pending/total, last error.
    assert m["id"] == qid
    assert m["sender"] == SENDER
    assert sorted(m["recipients"]) == sorted(RCPTS)
    states = {d["address"]: d["state"] for d in m["recipients_detail"]}
    assert states == {r: "pending" for r in RCPTS}
    for d in m["recipients_detail"]:
        # The connection error is what the operator needs to see.
        assert str(dead) in d["last_reply"], d
        assert re.search(r"connect|refused", d["last_reply"], re.I), d
    assert m["size"] > 0 and m["arrival"] > 0

    # Text: one row with the id, the sender, 2/2 pending, and the error.
    r = petrel.cli("queue", "list")
    assert r.returncode == 0
    row = [l for l in r.stdout.splitlines() if qid in l]
    assert len(row) == 1, r.stdout
    assert f"<{SENDER}>" in row[0] and "2/2" in row[0], row
    assert re.search(r"refused", r.stdout, re.I) and str(dead) in r.stdout, r.stdout

    # queue show --json: envelope, per-recipient state and attempts, headers.
    s = show_json(petrel, qid)
    assert s["message"]["id"] == qid and s["message"]["sender"] == SENDER
    for d in s["message"]["recipients_detail"]:
        assert d["state"] == "pending" and d["attempts"] >= 1 and d["last_reply"]
    assert "Subject: list and show" in s["headers"]
    assert f"Message-ID: {msgid}" in s["headers"]
    assert "\r\n\r\n" not in s["headers"], "headers only, not the body"

    # queue show (text).
    r = petrel.cli("queue", "show", qid)
    assert qid in r.stdout and SENDER in r.stdout
    for rcpt in RCPTS:
        assert re.search(rf"<{re.escape(rcpt)}>.*pending.*attempts [1-9]", r.stdout), r.stdout
    assert "Subject: list and show" in r.stdout
    assert "Hello from the delivery tests" not in r.stdout


def test_held_message_is_shown_as_held(workdir):
    petrel, _ = start_down(workdir)
    qid, _, _ = submit_pending(petrel, subject="held")
    petrel.cli("queue", "hold", qid)
    m = next(x for x in queue_json(petrel) if x["id"] == qid)
    assert m.get("held") is True, m
    assert show_json(petrel, qid)["message"].get("held") is True
    row = [l for l in petrel.cli("queue", "list").stdout.splitlines() if qid in l]
    assert "held" in row[0], row
    assert "held: yes" in petrel.cli("queue", "show", qid).stdout
    petrel.cli("queue", "release", qid)
    m = next(x for x in queue_json(petrel) if x["id"] == qid)
    assert m.get("held") is False, m


def test_hold_stops_retries_release_and_flush_retry_now(workdir):
    # retry every second: a message that is not held is tried again and again.
    petrel, _ = start_down(workdir, retry="1s")
    qid, _, _ = submit_pending(petrel, subject="hold")
    wait_for(lambda: min(attempts(petrel, qid).values()) >= 2, 30,
             "a retry one second later")

    assert petrel.cli("queue", "hold", qid).returncode == 0
    time.sleep(0.5)                      # an attempt already running may end
    before = attempts(petrel, qid)
    # Neither the schedule nor a flush (of all, or of this message) touches it.
    petrel.cli("queue", "flush")
    petrel.cli("queue", "flush", qid)
    time.sleep(3.0)
    assert attempts(petrel, qid) == before, "a held message was attempted"
    assert any(m["id"] == qid for m in queue_json(petrel))

    # The hold survives a restart.
    assert petrel.stop() == 0
    petrel.start()
    time.sleep(2.5)
    assert attempts(petrel, qid) == before, "held message attempted after restart"

    # release: attempted again (release makes it due now).
    assert petrel.cli("queue", "release", qid).returncode == 0
    wait_for(lambda: min(attempts(petrel, qid).values()) > max(before.values()),
             30, "an attempt after release")


def test_flush_attempts_now(workdir):
    # retry "1h": without the operator, no second attempt for an hour.
    petrel, _ = start_down(workdir, retry="1h")
    qid, _, _ = submit_pending(petrel, subject="flush")
    time.sleep(1.0)
    before = attempts(petrel, qid)
    assert set(before.values()) == {1}, before

    r = petrel.cli("queue", "flush", qid)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: set(attempts(petrel, qid).values()) == {2}, 30,
             "an attempt after `queue flush ID`")

    r = petrel.cli("queue", "flush")              # all messages
    assert r.returncode == 0, r.stderr
    wait_for(lambda: set(attempts(petrel, qid).values()) == {3}, 30,
             "an attempt after `queue flush`")
    m = show_json(petrel, qid)["message"]
    assert {d["state"] for d in m["recipients_detail"]} == {"pending"}


def test_bounce_sends_one_dsn_and_removes_the_message(workdir):
    petrel, _ = start_down(workdir)
    qid, msgid, _ = submit_pending(petrel, subject="to be bounced")
    assert maildir_files(workdir, "alice") == []

    r = petrel.cli("queue", "bounce", qid)
    assert r.returncode == 0, r.stderr
    files = wait_maildir(workdir, "alice", 1, timeout=30)
    wait_for(lambda: all(m["id"] != qid for m in queue_json(petrel)), 30,
             "the bounced message to leave the queue")
    r = petrel.cli("queue", "show", qid, check=False)
    assert r.returncode != 0 and qid in r.stderr

    with open(files[0], "rb") as f:
        d = Dsn(f.read())
    assert str(d.msg["Return-Path"]).strip() == "<>"
    assert SENDER in str(d.msg["To"])
    assert str(d.per_message["Reporting-MTA"]).replace(" ", "") == "dns;mx.example.test"
    assert set(d.per_recipient) == set(RCPTS)
    for rcpt, b in d.per_recipient.items():
        assert str(b["Action"]).strip().lower() == "failed"
        assert str(b["Status"]).strip().startswith("5."), b["Status"]
        assert rcpt in d.human
    assert d.returned is not None and msgid.encode() in d.returned
    time.sleep(1.0)
    assert len(maildir_files(workdir, "alice")) == 1, "exactly one DSN"


def test_delete_removes_the_message_without_dsn(workdir):
    petrel, _ = start_down(workdir)
    qid, _, _ = submit_pending(petrel, subject="to be deleted")
    other, _, _ = submit_pending(petrel, subject="stays")

    r = petrel.cli("queue", "delete", qid)
    assert r.returncode == 0, r.stderr
    ids = [m["id"] for m in queue_json(petrel)]
    assert qid not in ids and other in ids
    r = petrel.cli("queue", "show", qid, check=False)
    assert r.returncode != 0 and qid in r.stderr
    r = petrel.cli("queue", "delete", qid, check=False)
    assert r.returncode != 0 and qid in r.stderr, "deleting twice is an error"
    time.sleep(1.0)
    assert maildir_files(workdir, "alice") == [], "delete sends no DSN"
    # Gone for good: not back after a restart.
    petrel.stop()
    assert qid not in [m["id"] for m in petrel.spool_messages()]
    petrel.start()
    assert qid not in [m["id"] for m in queue_json(petrel)]


QUEUE_COMMANDS = [("queue", "list"), ("queue", "list", "--json"),
                  ("queue", "show", UNKNOWN_ID), ("queue", "flush"),
                  ("queue", "flush", UNKNOWN_ID), ("queue", "hold", UNKNOWN_ID),
                  ("queue", "release", UNKNOWN_ID), ("queue", "delete", UNKNOWN_ID),
                  ("queue", "bounce", UNKNOWN_ID)]


def _assert_says_not_running(petrel, args):
    r = petrel.cli(*args, check=False)
    assert r.returncode != 0, (args, r.stdout)
    assert r.stdout.strip() == "", (args, r.stdout)
    err = r.stderr.lower()
    assert "petrel" in err and ("running" in err or "reach" in err), (args, r.stderr)
    assert "petrel.sock" in r.stderr, ("names the admin socket", args, r.stderr)


def test_commands_against_a_stopped_server(workdir):
    petrel, _ = start_down(workdir)
    petrel.stop()
    # After a clean stop (no socket file) ...
    for args in QUEUE_COMMANDS:
        _assert_says_not_running(petrel, args)
    # ... and after kill -9 (a stale socket file may be left behind).
    petrel.start()
    petrel.kill9()
    for args in QUEUE_COMMANDS:
        _assert_says_not_running(petrel, args)


def test_never_started_server(workdir):
    petrel = Petrel(workdir, extra_config=relay_config({}))
    assert not os.path.exists(os.path.join(workdir, "petrel.sock"))
    for args in QUEUE_COMMANDS:
        _assert_says_not_running(petrel, args)


@pytest.mark.parametrize("action", ["show", "hold", "release", "delete", "bounce"])
def test_malformed_and_unknown_ids(workdir, action):
    petrel, _ = start_down(workdir)
    qid, _, _ = submit_pending(petrel, subject="bystander")
    for bad in ["XYZ", "not-a-queue-id!!", qid.lower(), qid + "0", "'; DROP"]:
        r = petrel.cli("queue", action, bad, check=False)
        assert r.returncode != 0, (action, bad, r.stdout)
        assert bad in r.stderr and re.search(r"queue id|invalid|valid", r.stderr, re.I), \
            (action, bad, r.stderr)
    r = petrel.cli("queue", action, UNKNOWN_ID, check=False)
    assert r.returncode != 0, (action, r.stdout)
    assert UNKNOWN_ID in r.stderr and re.search(r"not found|no message|unknown",
                                                r.stderr, re.I), r.stderr
    # The bystander is untouched by all of it.
    m = next(x for x in queue_json(petrel) if x["id"] == qid)
    assert {d["state"] for d in m["recipients_detail"]} == {"pending"}
    # No ID at all: the command line refuses it.
    r = petrel.cli("queue", action, check=False)
    assert r.returncode != 0 and r.stderr.strip()


@pytest.mark.parametrize("bad", ["garbage", UNKNOWN_ID])
def test_flush_with_bad_id_is_an_error(workdir, bad):
    petrel, _ = start_down(workdir)
    r = petrel.cli("queue", "flush", bad, check=False)
    assert r.returncode != 0, f"exit {r.returncode}, stdout {r.stdout!r}, stderr {r.stderr!r}"
    assert bad in r.stderr


def test_bounce_while_an_attempt_is_in_flight_is_consistent(workdir, start_peer):
    peer = start_peer("slow_accept", delay=2.0)
    petrel = Petrel(workdir, extra_config=relay_config({"example.net": peer})).start()
    rcpt = "inflight@example.net"
    content, _ = make_message(subject="bounced in flight")
    qid, refused = submit(petrel, [rcpt], content)
    assert refused == {}
    # The whole message is at the peer, which waits 2 s before its 250.
    wait_for(lambda: os.path.exists(peer.state_path + ".d/txn-0001.raw"), 30,
             "the message at the peer")
    r = petrel.cli("queue", "bounce", qid, check=False)
    wait_for(lambda: peer.stats()["transactions"] and
             peer.stats()["transactions"][0]["outcome"] != "open", 30,
             "the peer's answer")
    wait_for(lambda: json.loads(petrel.cli("queue", "list", "--json").stdout) == [],
             30, "the queue to empty")
    time.sleep(1.0)
    delivered = peer.stats()["delivered"].get(rcpt, 0)
    dsns = maildir_files(workdir, "alice")
    # Refusing the bounce (busy) or bouncing once the attempt is over are both
    # fine; telling alice "failed" for a recipient the peer accepted is not.
    assert not (delivered and dsns), (
        f"bounce exit {r.returncode} {r.stderr.strip()!r}; the peer answered 250 "
        f"for {rcpt} and alice got {len(dsns)} non-delivery DSN(s)")
    assert delivered or dsns, "neither delivered nor bounced"
