"""Fixtures and helpers for the delivery proofs: petrel relays to the
scripted peer (tests/peer/peer.py), which records what it receives.

The integration fixtures (Petrel, workdir, the no-leaked-servers guard) are
loaded from tests/integration/conftest.py under another module name, so the
two folders never fight over the name "conftest". The peer runs as its own
process (PeerProcess) and is read through its state file, as a remote MTA
would be. Every wait is bounded; nothing asserts on timing.
"""
import email
import email.utils
import importlib.util
import os
import sys
from email import policy
from email.message import EmailMessage

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "peer"))

from peer import PeerProcess  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "petrel_integration_conftest", os.path.join(TESTS, "integration", "conftest.py"))
_integration = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _integration
_spec.loader.exec_module(_integration)

Petrel = _integration.Petrel
wait_for = _integration.wait_for
free_port = _integration.free_port
queued_id = _integration.queued_id
no_leaked_servers = _integration.no_leaked_servers   # autouse fixture
workdir = _integration.workdir                       # fixture

# Generous bound for "the peer has seen every delivery": with
# retry_schedule = ["1s"] a correct petrel needs a few seconds at most.
DELIVERY_TIMEOUT = 120.0
SENDER = "alice@example.test"       # local, so DSNs land in a Maildir we can read
DONE = ("delivered", "failed")


# ---- the peer ---------------------------------------------------------------

@pytest.fixture
def start_peer(workdir):
    """start_peer(scenario, **options) -> a running PeerProcess whose state
    file is in workdir; stopped at teardown."""
    peers = []

    def start(scenario, **options):
        path = os.path.join(workdir, f"peer{len(peers) + 1}-{scenario}.json")
        p = PeerProcess(scenario, state_path=path, **options).start()
        peers.append(p)
        return p

    yield start
    for p in peers:
        p.stop()


def wait_delivered(peer, rcpts, timeout=DELIVERY_TIMEOUT):
    """Waits until the peer has answered 250 to the end of data for every
    recipient in rcpts at least once; returns the peer's state."""
    rcpts = list(rcpts)
    return peer.wait_for(
        lambda s: all(s["delivered"].get(r, 0) >= 1 for r in rcpts),
        timeout, f"the peer to accept {len(rcpts)} recipient(s)")


def assert_exactly_once(stats, rcpts, message_id=None):
    """Every recipient in rcpts was delivered (250 after the data) exactly
    once, and (if given) every delivered transaction carried message_id."""
    counts = {r: stats["delivered"].get(r, 0) for r in rcpts}
    wrong = {r: n for r, n in counts.items() if n != 1}
    assert not wrong, f"not delivered exactly once: {wrong}"
    if message_id is not None:
        ids = {t["message_id"] for t in stats["transactions"]
               if t["outcome"] == "delivered"
               and set(t.get("rcpts_accepted", [])) & set(rcpts)}
        assert ids == {message_id}, ids


def delivered_transactions(stats):
    return [t for t in stats["transactions"] if t["outcome"] == "delivered"]


# ---- petrel -----------------------------------------------------------------

def relay_config(routes, max_recipients_per_transaction=100, extra=""):
    """The [routes], [delivery] and [local] tables of interface.md. routes
    maps a domain to a PeerProcess/Peer (its port) or to "host:port"."""
    lines = ["[routes]"]
    for domain, target in routes.items():
        hostport = target if isinstance(target, str) else f"127.0.0.1:{target.port}"
        lines.append(f'"{domain}" = "{hostport}"')
    return "\n".join(lines) + f"""

[delivery]
retry_schedule = ["1s"]
max_recipients_per_transaction = {max_recipients_per_transaction}

[local]
maildir = "mail/{{domain}}/{{user}}"
""" + extra


def start_relay(workdir, routes, **kw):
    """A petrel that relays the routed domains to their peers and delivers
    example.test locally into workdir/mail/example.test/USER/."""
    return Petrel(workdir, extra_config=relay_config(routes, **kw)).start()


def make_message(subject="delivery test", to="undisclosed-recipients:;",
                 body="Hello from the delivery tests.\n"):
    """Returns (bytes with CRLF line ends, Message-ID)."""
    m = EmailMessage()
    m["From"] = SENDER
    m["To"] = to
    m["Subject"] = subject
    m["Date"] = email.utils.formatdate()
    m["Message-ID"] = email.utils.make_msgid(domain="example.test")
    m.set_content(body)
    return m.as_bytes(policy=policy.SMTP), m["Message-ID"]


def submit(petrel, rcpts, content, sender=SENDER):
    """Submits one message over SMTP, one RCPT at a time (raw RCPT lines, so
    odd addresses go out exactly as written). Returns (queue id or None,
    {rcpt: (code, text)} for every RCPT refused)."""
    import smtplib
    refused = {}
    with smtplib.SMTP(petrel.host, petrel.port, timeout=60) as s:
        code, _ = s.ehlo("submitter.example.test")
        assert code == 250
        code, text = s.mail(sender)
        assert code == 250, text
        for r in rcpts:
            code, text = s.docmd(f"RCPT TO:<{r}>")
            if code != 250:
                refused[r] = (code, text.decode())
        if len(refused) == len(rcpts):
            s.rset()
            return None, refused
        code, text = s.data(content)
        assert code == 250, text
        return queued_id([text.decode()]), refused


def spool_by_id(petrel):
    """petrel spool list --json as {id: message}; petrel must be stopped."""
    return {m["id"]: m for m in petrel.spool_messages()}


def assert_spool(petrel, qid, expected):
    """The message qid is either gone from the spool (only allowed once every
    recipient is done) or its recipients are in the expected states
    {address: "delivered"|"failed"|"pending"}. Every DSN (sender "") in the
    spool must be delivered. Returns the spool entry or None."""
    msgs = spool_by_id(petrel)
    for m in msgs.values():
        if m["sender"] == "":
            states = {d["address"]: d["state"] for d in m["recipients_detail"]}
            assert set(states.values()) <= {"delivered"}, f"undelivered DSN: {m}"
    m = msgs.get(qid)
    if m is None:
        assert set(expected.values()) <= set(DONE), \
            f"{qid} left the spool with recipients not done: {expected}"
        return None
    states = {d["address"]: d["state"] for d in m["recipients_detail"]}
    assert states == expected, m
    return m


# ---- Maildir and DSN ------------------------------------------------------------------

def maildir_files(workdir, user, domain="example.test"):
    base = os.path.join(workdir, "mail", domain, user)
    out = []
    for sub in ("new", "cur"):
        d = os.path.join(base, sub)
        if os.path.isdir(d):
            out += [os.path.join(d, f) for f in sorted(os.listdir(d))]
    return out


def wait_maildir(workdir, user, count=1, timeout=DELIVERY_TIMEOUT):
    return wait_for(lambda: len(maildir_files(workdir, user)) >= count and
                    maildir_files(workdir, user), timeout,
                    f"{count} message(s) in {user}'s Maildir")


class Dsn:
    """A parsed RFC 3464 report: .msg (the whole message), .human (text
    of the first part), .per_message (fields), .per_recipient ({final
    recipient address: fields}), .returned (bytes of the returned message
    or headers, or None)."""

    def __init__(self, raw):
        self.raw = raw
        self.msg = email.message_from_bytes(raw, policy=policy.default)
        assert self.msg.get_content_type() == "multipart/report", self.msg["Content-Type"]
        assert self.msg.get_param("report-type") == "delivery-status"
        parts = self.msg.get_payload()
        assert parts[0].get_content_maintype() == "text", "first part: human-readable"
        self.human = parts[0].get_content()
        status = [p for p in parts if p.get_content_type() == "message/delivery-status"]
        assert len(status) == 1, [p.get_content_type() for p in parts]
        blocks = status[0].get_payload()
        self.per_message = blocks[0]
        self.per_recipient = {}
        for b in blocks[1:]:
            kind, _, addr = str(b["Final-Recipient"]).partition(";")
            assert kind.strip().lower() == "rfc822", b["Final-Recipient"]
            self.per_recipient[addr.strip()] = b
        self.returned = None
        for p in parts[2:]:
            if p.get_content_type() in ("message/rfc822", "text/rfc822-headers",
                                        "message/global", "message/global-headers"):
                self.returned = p.as_bytes()


def check_dsn(raw, failed, status="5.1.1", diagnostic_contains=(), original_message_id=None,
              reporting_mta="mx.example.test", recipient=SENDER):
    """Checks a failure DSN field by field (RFC 3464, interface.md):
    from the null sender, to `recipient`, one per-recipient block per address
    in `failed` and no other, each Action failed, Status `status`, Remote-MTA
    and Diagnostic-Code "smtp; ..." present. Returns the Dsn."""
    d = Dsn(raw)
    m = d.msg
    assert str(m["Return-Path"]).strip() == "<>", "a DSN comes from the null sender"
    assert recipient in str(m["To"])
    assert m["From"] and m["Date"] and m["Message-ID"]
    pm = d.per_message
    assert str(pm["Reporting-MTA"]).replace(" ", "").lower() == "dns;" + reporting_mta
    assert pm["Arrival-Date"] and email.utils.parsedate_to_datetime(str(pm["Arrival-Date"]))
    assert set(d.per_recipient) == set(failed), sorted(d.per_recipient)
    for addr in failed:
        b = d.per_recipient[addr]
        assert str(b["Action"]).strip().lower() == "failed"
        assert str(b["Status"]).strip() == status
        remote = str(b["Remote-MTA"] or "")
        assert remote.replace(" ", "").lower().startswith("dns;") and len(remote) > 5, remote
        diag = " ".join(str(b["Diagnostic-Code"] or "").split())
        assert diag.lower().startswith("smtp;"), diag
        for piece in diagnostic_contains:
            assert piece.format(addr=addr) in diag, (piece, diag)
        assert addr in d.human, "the human-readable part names the recipient"
    if original_message_id is not None:
        assert d.returned is not None and original_message_id.encode() in d.returned
    return d
