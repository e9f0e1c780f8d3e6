"""Queue lifetime and delay warnings (interface.md [delivery]):
max_queue_lifetime over -> the pending recipients fail with 4.4.7 and the
sender gets one failure DSN; delay_warning_after -> exactly one delayed DSN
(RFC 3464 Action: delayed) however many retries follow; NOTIFY=NEVER -> no
DSN at all; a message from the null sender never gets a DSN (never bounce a
bounce). Mail to down.example goes to a loopback port where nothing listens.
Waits are bounded polls; nothing asserts on timing.
"""
import json
import os
import smtplib
import time

from conftest import (SENDER, Dsn, Petrel, free_port, make_message,
                      maildir_files, queued_id, relay_config, wait_for,
                      wait_maildir)

DOWN = "bob@down.example"


def start(workdir, delivery_extra, routes=None):
    dead = free_port()
    cfg = relay_config(routes or {"down.example": f"127.0.0.1:{dead}"})
    cfg = cfg.replace('retry_schedule = ["1s"]',
                      'retry_schedule = ["1s"]\n' + delivery_extra.strip())
    return Petrel(workdir, extra_config=cfg).start()


def send(petrel, sender, rcpts, subject, rcpt_options=()):
    """smtplib submission with RCPT parameters; returns (qid, Message-ID)."""
    content, msgid = make_message(subject=subject)
    with smtplib.SMTP(petrel.host, petrel.port, timeout=60) as s:
        s.ehlo("submitter.example.test")
        code, text = s.mail(sender)
        assert code == 250, text
        for r in rcpts:
            code, text = s.rcpt(r, options=list(rcpt_options))
            assert code == 250, text
        code, text = s.data(content)
        assert code == 250, text
    return queued_id([text.decode()]), msgid


def queue(petrel):
    return json.loads(petrel.cli("queue", "list", "--json").stdout)


def in_queue(petrel, qid):
    return any(m["id"] == qid for m in queue(petrel))


def attempts(petrel, qid):
    for m in queue(petrel):
        if m["id"] == qid:
            return min(d["attempts"] for d in m["recipients_detail"])
    return None


def all_mail(workdir):
    """Every file delivered into any Maildir under workdir/mail."""
    out = []
    for root, _, files in os.walk(os.path.join(workdir, "mail")):
        if os.path.basename(root) in ("new", "cur"):
            out += [os.path.join(root, f) for f in files]
    return sorted(out)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def check_dsn_fields(raw, rcpts, action, status_prefix, msgid=None, to=SENDER):
    d = Dsn(raw)
    assert str(d.msg["Return-Path"]).strip() == "<>", "a DSN comes from the null sender"
    assert to in str(d.msg["To"])
    assert d.msg["From"] and d.msg["Date"] and d.msg["Message-ID"]
    assert str(d.per_message["Reporting-MTA"]).replace(" ", "") == "dns;mx.example.test"
    assert d.per_message["Arrival-Date"]
    assert set(d.per_recipient) == set(rcpts), sorted(d.per_recipient)
    for r, b in d.per_recipient.items():
        assert str(b["Action"]).strip().lower() == action, (r, b["Action"])
        assert str(b["Status"]).strip().startswith(status_prefix), (r, b["Status"])
        assert b["Diagnostic-Code"], "the last error is reported"
        assert r in d.human
    if msgid is not None:
        assert d.returned is not None and msgid.encode() in d.returned
    return d


def test_expired_message_fails_with_447_and_one_dsn(workdir):
    petrel = start(workdir, 'max_queue_lifetime = "3s"')
    qid, msgid = send(petrel, SENDER, [DOWN, "carol@down.example"], "will expire")
    files = wait_maildir(workdir, "alice", 1, timeout=30)
    d = check_dsn_fields(read(files[0]), [DOWN, "carol@down.example"],
                         "failed", "4.4.7", msgid)
    for b in d.per_recipient.values():
        assert str(b["Status"]).strip() == "4.4.7"
        # Why it expired: the last error (the refused connection) is kept.
        assert "refused" in " ".join(str(b["Diagnostic-Code"]).split()).lower(), \
            b["Diagnostic-Code"]
    wait_for(lambda: not in_queue(petrel, qid), 30, "the expired message to leave the queue")
    assert b"dsn=4.4.7" in petrel.read_log()
    time.sleep(2.0)                     # a retry would come within a second
    assert len(maildir_files(workdir, "alice")) == 1, "exactly one failure DSN"
    assert queue(petrel) == [], "the DSN itself was delivered"


def test_one_delay_warning_then_nothing_more(workdir):
    petrel = start(workdir, 'max_queue_lifetime = "1h"\ndelay_warning_after = "2s"')
    qid, msgid = send(petrel, SENDER, [DOWN], "delayed")
    files = wait_maildir(workdir, "alice", 1, timeout=30)
    seen = attempts(petrel, qid)
    check_dsn_fields(read(files[0]), [DOWN], "delayed", "4.", msgid)
    d = Dsn(read(files[0]))
    assert d.per_recipient[DOWN]["Will-Retry-Until"], "RFC 3464 2.3.9 for delayed"
    # Several more retries (one a second): still the one warning, still queued.
    wait_for(lambda: (attempts(petrel, qid) or 0) >= seen + 3, 30, "three more retries")
    time.sleep(0.5)
    assert len(maildir_files(workdir, "alice")) == 1, "exactly ONE delay DSN"
    m = next(x for x in queue(petrel) if x["id"] == qid)
    assert m["recipients_detail"][0]["state"] == "pending"
    # Also not again after a restart.
    petrel.stop()
    petrel.start()
    wait_for(lambda: (attempts(petrel, qid) or 0) >= seen + 5, 30, "retries after restart")
    assert len(maildir_files(workdir, "alice")) == 1, "a second delay DSN after restart"


def test_notify_never_gives_no_dsn(workdir):
    # Expiry after 4 s, a delay warning after 2 s: NOTIFY=NEVER silences both.
    # A control message from bob@ (default NOTIFY) shows the DSNs are made.
    petrel = start(workdir, 'max_queue_lifetime = "4s"\ndelay_warning_after = "2s"')
    qid, _ = send(petrel, SENDER, [DOWN], "notify never", ["NOTIFY=NEVER"])
    ctl, _ = send(petrel, "bob@example.test", ["carol@down.example"], "control")
    wait_for(lambda: not in_queue(petrel, qid) and not in_queue(petrel, ctl), 30,
             "both messages to expire")
    wait_maildir(workdir, "bob", 2, timeout=30)     # control: delay + failure
    time.sleep(1.5)
    assert maildir_files(workdir, "alice") == [], "NOTIFY=NEVER: no DSN"
    actions = sorted(str(b["Action"]).strip() for f in maildir_files(workdir, "bob")
                     for b in Dsn(read(f)).per_recipient.values())
    assert actions == ["delayed", "failed"], actions


def test_null_sender_never_gets_a_dsn(workdir, start_peer):
    # From <>: one recipient expires (closed port), one is refused with 550
    # by the peer. A control message from alice@ to the same two shows that
    # either would produce a DSN.
    peer = start_peer("reject_some", reject=["nobody"])
    dead = free_port()
    petrel = start(workdir, 'max_queue_lifetime = "3s"\ndelay_warning_after = "2s"',
                   routes={"down.example": f"127.0.0.1:{dead}", "example.net": peer})
    rcpts = [DOWN, "nobody@example.net"]
    qid, _ = send(petrel, "", rcpts, "from the null sender")
    ctl, _ = send(petrel, SENDER, rcpts, "control")
    wait_for(lambda: not in_queue(petrel, qid) and not in_queue(petrel, ctl), 30,
             "both messages to finish")
    wait_for(lambda: queue(petrel) == [], 30, "every DSN to be delivered")
    time.sleep(1.5)
    # Only alice's DSNs exist anywhere: the 550 at once, then the delay
    # warning and the expiry for down.example.
    files = all_mail(workdir)
    assert files and all(f.startswith(os.path.join(workdir, "mail", "example.test",
                                                   "alice")) for f in files), files
    for f in files:
        d = Dsn(read(f))
        assert d.returned is not None and b"Subject: control" in d.returned, \
            "a DSN for the null-sender message"
    assert peer.stats()["rcpt_attempts"]["nobody@example.net"] == 2
