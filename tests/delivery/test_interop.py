"""Issue 3, "real peers": petrel against SMTP implementations it did not
write.

(a) petrel relays into Python's aiosmtpd (python3-aiosmtpd), in-process on
    127.0.0.1: three messages, one with 120 recipients (more than
    max_recipients_per_transaction = 100, so two transactions).
(b) petrel relays into a private loopback Postfix (postfix_instance.py)
    that keeps everything in its hold queue; the queue (postqueue -j) and
    the held messages (postcat) are the record.
(c) that private Postfix relays into petrel (relayhost = [127.0.0.1]:PORT,
    no DNS); petrel delivers example.test into its Maildirs.

Every assertion is on what arrived: each recipient exactly once, the
Message-ID present, the message text intact (what was submitted is the
tail of what arrived, after CRLF/LF normalisation; only trace headers are
added in front). Every server binds 127.0.0.1 only, every wait is bounded,
every process is stopped at teardown.
"""
import asyncio
import email
import email.utils
import json
import os
import re
import smtplib
import threading
from email import policy
from email.message import EmailMessage

import pytest

from conftest import (SENDER, assert_spool, free_port, maildir_files,
                      start_relay, submit, wait_for, wait_maildir)
import postfix_instance

WAIT = 120.0


# ---- helpers ----------------------------------------------------------------

def message(subject, body):
    """(bytes with CRLF line ends, Message-ID)."""
    m = EmailMessage()
    m["From"] = SENDER
    m["To"] = "undisclosed-recipients:;"
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate()
    m["Message-ID"] = email.utils.make_msgid(domain="example.test")
    m.set_content(body)
    return m.as_bytes(policy=policy.SMTP), m["Message-ID"]


BODY_DOTS = ("A body that SMTP must carry unchanged.\n"
             ".a line that starts with a dot\n"
             "..two dots\n"
             ".\n"
             "the line above is a lone dot\n"
             + "x" * 900 + "\n"           # long, but under 998
             + "trailing spaces   \n"
             "From the start of a line\n")


def lf(b):
    return b.replace(b"\r\n", b"\n")


def message_id_of(content):
    m = email.message_from_bytes(content, policy=policy.default)
    return str(m["Message-ID"]).strip() if m["Message-ID"] else None


def assert_intact(received, original):
    """received is original with trace fields prepended, nothing else
    changed (line ends normalised to LF first)."""
    r, o = lf(received), lf(original)
    assert r.endswith(o), ("the message text changed in transit",
                           r[-400:], o[-400:])
    head = r[:len(r) - len(o)]
    assert re.search(rb"(^|\n)Received: ", head), head[:300]
    for line in head.split(b"\n")[:-1]:
        assert line[:1] in (b" ", b"\t") or re.match(rb"^[A-Za-z-]+:", line), \
            ("only header fields may be added in front", line)


def wait_petrel_done(petrel, qids, timeout=WAIT):
    """Waits until petrel (running) has no pending recipient left in any of
    qids: each is gone from the queue or every recipient is done."""
    def done():
        rows = json.loads(petrel.cli("queue", "list", "--json").stdout)
        for m in rows:
            if m["id"] in qids and any(d["state"] == "pending"
                                       for d in m["recipients_detail"]):
                return False
        return True
    wait_for(done, timeout, "petrel to finish every recipient")


# ---- (a) aiosmtpd -----------------------------------------------------------

class Recorder:
    """aiosmtpd handler: accepts everything and records each transaction."""

    def __init__(self):
        self.lock = threading.Lock()
        self.transactions = []   # (mail_from, [rcpts], content bytes)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.transactions.append((envelope.mail_from, list(envelope.rcpt_tos),
                                      bytes(envelope.original_content or envelope.content)))
        return "250 2.0.0 Ok: recorded"

    def snapshot(self):
        with self.lock:
            return list(self.transactions)


@pytest.fixture
def aiosmtpd_server():
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    handler = Recorder()
    for _ in range(5):
        port = free_port()
        controller = controller_mod.Controller(
            handler, hostname="127.0.0.1", port=port, ready_timeout=30,
            server_hostname="aiosmtpd.example.org")
        try:
            controller.start()
            break
        except Exception:        # the port was taken meanwhile
            try:
                controller.stop()
            except Exception:
                pass
    else:
        pytest.fail("aiosmtpd did not start")
    try:
        yield port, handler
    finally:
        controller.stop()


def test_relay_into_aiosmtpd(workdir, aiosmtpd_server):
    port, handler = aiosmtpd_server
    petrel = start_relay(workdir, {"example.org": f"127.0.0.1:{port}"})
    many = [f"user{i:03d}@example.org" for i in range(120)]
    plan = [
        (["bob@example.org"], message("interop 1", "Hello aiosmtpd.\n")),
        (["carol@example.org", "dave@example.org", "erin@example.org"],
         message("interop 2: dots and long lines", BODY_DOTS)),
        (many, message("interop 3: 120 recipients", "Many recipients.\n" * 50)),
    ]
    qids = []
    for rcpts, (content, msgid) in plan:
        qid, refused = submit(petrel, rcpts, content)
        assert refused == {}
        qids.append(qid)

    expected = sum(len(r) for r, _ in plan)
    wait_for(lambda: sum(len(t[1]) for t in handler.snapshot()) >= expected,
             WAIT, f"aiosmtpd to receive {expected} recipients")
    wait_petrel_done(petrel, qids)
    petrel.stop()
    txns = handler.snapshot()

    by_id = {msgid: (rcpts, content) for rcpts, (content, msgid) in plan}
    seen = {}
    for mail_from, rcpts, content in txns:
        assert mail_from == SENDER
        msgid = message_id_of(content)
        assert msgid in by_id, f"unknown or missing Message-ID {msgid!r}"
        assert_intact(content, by_id[msgid][1])
        for r in rcpts:
            seen[(msgid, r)] = seen.get((msgid, r), 0) + 1
    want = {(msgid, r): 1 for msgid, (rcpts, _) in by_id.items() for r in rcpts}
    assert seen == want, {k: v for k, v in seen.items() if want.get(k) != v} or \
        sorted(set(want) - set(seen))[:5]
    # 120 recipients with max_recipients_per_transaction = 100: split in two.
    big = [t for t in txns if message_id_of(t[2]) == plan[2][1][1]]
    assert sorted(len(t[1]) for t in big) == [20, 100], [len(t[1]) for t in big]
    for qid, (rcpts, _) in zip(qids, plan):
        assert_spool(petrel, qid, {r: "delivered" for r in rcpts})
    assert maildir_files(workdir, "alice") == [], "no DSN"


# ---- (b) and (c) Postfix ------------------------------------------------------

def _postfix(**kw):
    reason = postfix_instance.why_unavailable()
    if reason:
        pytest.skip(reason)
    try:
        return postfix_instance.PostfixInstance(**kw)
    except postfix_instance.PostfixUnavailable as e:
        pytest.skip(f"private Postfix cannot start: {e}")


@pytest.fixture
def postfix_hold():
    pf = _postfix(mode="hold")
    try:
        yield pf
    finally:
        pf.stop()


def test_relay_into_postfix(workdir, postfix_hold):
    pf = postfix_hold
    petrel = start_relay(workdir, {"example.org": f"127.0.0.1:{pf.port}"})
    many = [f"rcpt{i:03d}@example.org" for i in range(120)]
    plan = [
        (["bob@example.org"], message("to Postfix 1", "Hello Postfix.\n")),
        (["carol@example.org", "dave@example.org", "erin@example.org",
          "frank@example.org", "grace@example.org"],
         message("to Postfix 2: dots and long lines", BODY_DOTS)),
        (many, message("to Postfix 3: 120 recipients", "Many recipients.\n" * 50)),
    ]
    qids = []
    for rcpts, (content, msgid) in plan:
        qid, refused = submit(petrel, rcpts, content)
        assert refused == {}
        qids.append(qid)

    expected = sum(len(r) for r, _ in plan)
    pf.wait_queue(lambda q: sum(len(m["recipients"]) for m in q) >= expected,
                  WAIT, f"{expected} recipients in Postfix's queue")
    wait_petrel_done(petrel, qids)
    petrel.stop()
    queue = pf.queue()

    by_id = {msgid: (rcpts, content) for rcpts, (content, msgid) in plan}
    seen = {}
    for m in queue:
        assert m["queue_name"] == "hold", m
        assert m["sender"] == SENDER, m
        content = pf.content(m["queue_id"])
        msgid = message_id_of(content)
        assert msgid in by_id, f"unknown or missing Message-ID {msgid!r}"
        assert_intact(content, by_id[msgid][1])
        for r in m["recipients"]:
            key = (msgid, r["address"])
            seen[key] = seen.get(key, 0) + 1
    want = {(msgid, r): 1 for msgid, (rcpts, _) in by_id.items() for r in rcpts}
    assert seen == want, {k: v for k, v in seen.items() if want.get(k) != v} or \
        sorted(set(want) - set(seen))[:5]
    for qid, (rcpts, _) in zip(qids, plan):
        assert_spool(petrel, qid, {r: "delivered" for r in rcpts})
    assert maildir_files(workdir, "alice") == [], "no DSN"


def test_postfix_relays_into_petrel(workdir):
    petrel = start_relay(workdir, {})
    pf = _postfix(mode="relay", relayhost=f"127.0.0.1:{petrel.port}")
    try:
        group = [f"user{i:02d}@example.test" for i in range(20)]
        plan = [
            (["bob@example.test", "dave@example.test"],
             message("from Postfix 1", "Hello petrel, from Postfix.\n")),
            (group, message("from Postfix 2: dots", BODY_DOTS)),
        ]
        for rcpts, (content, _) in plan:
            with smtplib.SMTP("127.0.0.1", pf.port, timeout=60) as s:
                refused = s.sendmail(SENDER, rcpts, content)
                assert refused == {}
        users = {}
        for rcpts, (content, msgid) in plan:
            for r in rcpts:
                users[r.split("@")[0]] = (content, msgid)
        for u in users:
            wait_maildir(workdir, u, 1, WAIT)
        pf.wait_queue(lambda q: q == [], WAIT, "Postfix's queue to empty")
        log = pf.log()
    finally:
        pf.stop()
    petrel.stop()

    for u, (content, msgid) in users.items():
        files = maildir_files(workdir, u)
        assert len(files) == 1, (u, files)
        with open(files[0], "rb") as f:
            got = f.read()
        assert message_id_of(got) == msgid
        assert_intact(got, content)
        assert b"(Postfix)" in got, "Postfix's Received: field came along"
    assert maildir_files(workdir, "alice") == [], "no DSN"
    sent = re.findall(r"to=<([^>]+)>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:"
                      + str(petrel.port) + r".*status=sent", log)
    assert sorted(sent) == sorted(r for rcpts, _ in plan for r in rcpts), log[-3000:]
    assert not re.search(r"status=(deferred|bounced)", log), log[-3000:]
    assert petrel.spool_messages() == [] or all(
        d["state"] == "delivered" for m in petrel.spool_messages()
        for d in m["recipients_detail"])
