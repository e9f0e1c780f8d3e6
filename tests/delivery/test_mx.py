"""Issue 3, "with dnsmasq": petrel finds its next hop in the DNS.

A real dnsmasq on 127.0.0.1 (tests/integration/dnsmasq.py) serves the
records; petrel asks it alone ([dns] servers = ["127.0.0.1:PORT"]) and
connects to every MX or implicit-MX host on [delivery] smtp_port. The MX
hosts resolve to 127.0.0.2, 127.0.0.3, 127.0.0.4 (loopback on Linux), where
scripted peers (tests/peer/peer.py) listen on one common port; petrel's own
listener is on 127.0.0.1 and another port, so it is never an MX target.
Nothing here leaves loopback.

Cases (interface.md, "What the client does"): the lowest preference wins;
a refused connection or a 421 greeting at the best MX falls back to the next
one, exactly once; a domain with only an A record is its own MX; null MX
(RFC 7505) fails at once with 5.1.10 and no connection; NXDOMAIN fails with
5.1.2; a DNS server that does not answer defers (the message stays pending
with the DNS trouble as its last reply). Failures give one DSN in the local
sender's Maildir.
"""
import importlib.util
import json
import os
import re
import socket

import pytest

from conftest import (SENDER, TESTS, Petrel, assert_exactly_once, assert_spool,
                      Dsn, make_message, maildir_files, submit, wait_delivered,
                      wait_for, wait_maildir)

_spec = importlib.util.spec_from_file_location(
    "petrel_dnsmasq", os.path.join(TESTS, "integration", "dnsmasq.py"))
dnsmasq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dnsmasq)
Dnsmasq, mx, null_mx, host = dnsmasq.Dnsmasq, dnsmasq.mx, dnsmasq.null_mx, dnsmasq.host

pytestmark = pytest.mark.skipif(not Dnsmasq.available(), reason="dnsmasq is not installed")

MX_A, MX_B, MX_C = "127.0.0.2", "127.0.0.3", "127.0.0.4"
WAIT = 120.0


# ---- helpers ----------------------------------------------------------------

def common_free_port(hosts):
    """A TCP port that is free on every address in hosts (and on 127.0.0.1,
    where petrel listens)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        ok = True
        for h in set(hosts) | {"127.0.0.1"}:
            with socket.socket() as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no port free on " + ", ".join(hosts))


def start_peers(start_peer, specs, free_hosts=()):
    """specs: [(host, scenario, options)]. Starts one peer per spec, all on
    one common port (also kept free on free_hosts). Returns (port, peers)."""
    hosts = [h for h, _, _ in specs] + list(free_hosts)
    for _ in range(5):
        port = common_free_port(hosts)
        peers = []
        try:
            for h, scenario, options in specs:
                peers.append(start_peer(scenario, host=h, port=port, **options))
            return port, peers
        except AssertionError:   # another process took the port meanwhile
            for p in peers:
                p.stop()
    raise RuntimeError("could not start the peers on a common port")


def mx_config(dns_server, smtp_port):
    return f"""
[dns]
servers = ["{dns_server}"]

[delivery]
retry_schedule = ["1s"]
smtp_port = {smtp_port}

[local]
maildir = "mail/{{domain}}/{{user}}"
"""


def start_petrel(workdir, dns_server, smtp_port):
    p = Petrel(workdir, extra_config=mx_config(dns_server, smtp_port))
    assert p.port != smtp_port
    return p.start()


def check_failure_dsn(raw, failed, status, original_message_id):
    """A failure DSN (RFC 3464) without a remote MTA involved: from the null
    sender to alice, one block per failed recipient, Action failed, the
    given Status, the original message (or its headers) returned."""
    d = Dsn(raw)
    assert str(d.msg["Return-Path"]).strip() == "<>", "a DSN comes from the null sender"
    assert SENDER in str(d.msg["To"])
    assert str(d.per_message["Reporting-MTA"]).replace(" ", "").lower() == "dns;mx.example.test"
    assert set(d.per_recipient) == set(failed), sorted(d.per_recipient)
    for addr in failed:
        b = d.per_recipient[addr]
        assert str(b["Action"]).strip().lower() == "failed", b
        assert str(b["Status"]).strip() == status, b
        assert addr in d.human
    assert d.returned is not None and original_message_id.encode() in d.returned
    return d


def no_connections(peer):
    st = peer.stats()
    assert st["connection_count"] == 0, st["connections"]


# ---- MX preference and fallback ---------------------------------------------

def test_lowest_preference_mx_gets_the_mail(workdir, start_peer):
    # Preferences deliberately not in address or record order.
    port, (p20, p10, p30) = start_peers(start_peer, [
        (MX_A, "accept", {"hostname": "mx20.example.net"}),
        (MX_B, "accept", {"hostname": "mx10.example.net"}),
        (MX_C, "accept", {"hostname": "mx30.example.net"})])
    with Dnsmasq(mx("example.net", "mx30.example.net", 30),
                 mx("example.net", "mx20.example.net", 20),
                 mx("example.net", "mx10.example.net", 10),
                 host("mx20.example.net", MX_A),
                 host("mx10.example.net", MX_B),
                 host("mx30.example.net", MX_C)) as dns:
        petrel = start_petrel(workdir, dns.server, port)
        rcpts = ["bob@example.net", "carol@example.net"]
        content, msgid = make_message(subject="MX preference")
        qid, refused = submit(petrel, rcpts, content)
        assert refused == {}
        wait_delivered(p10, rcpts, WAIT)
        petrel.stop()
    assert_exactly_once(p10.stats(), rcpts, msgid)
    no_connections(p20)
    no_connections(p30)
    assert_spool(petrel, qid, {r: "delivered" for r in rcpts})
    assert maildir_files(workdir, "alice") == [], "no DSN"


@pytest.mark.parametrize("failure", ["refused", "greeting_421"])
def test_falls_back_to_the_next_mx(workdir, start_peer, failure):
    if failure == "refused":
        # Nothing listens on MX_A: the connection is refused.
        port, (backup,) = start_peers(start_peer, [(MX_B, "accept", {})],
                                      free_hosts=[MX_A])
        best = None
    else:
        port, (best, backup) = start_peers(start_peer, [
            (MX_A, "greeting_421", {"times": 0}),     # always 421 at the greeting
            (MX_B, "accept", {})])
    with Dnsmasq(mx("example.net", "mx1.example.net", 10),
                 mx("example.net", "mx2.example.net", 20),
                 host("mx1.example.net", MX_A),
                 host("mx2.example.net", MX_B)) as dns:
        petrel = start_petrel(workdir, dns.server, port)
        rcpts = ["bob@example.net", "carol@example.net", "dave@example.net"]
        content, msgid = make_message(subject=f"MX fallback ({failure})")
        qid, refused = submit(petrel, rcpts, content)
        assert refused == {}
        wait_delivered(backup, rcpts, WAIT)
        petrel.stop()
    st = backup.stats()
    assert_exactly_once(st, rcpts, msgid)
    assert st["violations"] == [], st["violations"]
    if best is not None:
        sb = best.stats()
        assert sb["connection_count"] >= 1, "the best MX was tried first"
        assert sb["transaction_count"] == 0 and sb["delivered"] == {}
    assert_spool(petrel, qid, {r: "delivered" for r in rcpts})
    assert maildir_files(workdir, "alice") == [], "no DSN"


def test_implicit_mx_from_the_a_record(workdir, start_peer):
    port, (peer,) = start_peers(start_peer, [(MX_B, "accept", {})])
    with Dnsmasq(host("implicit.example.net", MX_B)) as dns:
        assert dns.query("implicit.example.net", 15) == (0, 0), "NOERROR, no MX"
        petrel = start_petrel(workdir, dns.server, port)
        rcpts = ["bob@implicit.example.net"]
        content, msgid = make_message(subject="implicit MX")
        qid, refused = submit(petrel, rcpts, content)
        assert refused == {}
        wait_delivered(peer, rcpts, WAIT)
        petrel.stop()
    assert_exactly_once(peer.stats(), rcpts, msgid)
    assert_spool(petrel, qid, {r: "delivered" for r in rcpts})


# ---- permanent DNS answers ------------------------------------------------------

@pytest.mark.parametrize("case", ["null_mx", "nxdomain"])
def test_permanent_dns_answer_fails_at_once_with_a_dsn(workdir, start_peer, case):
    # The bad domain has an A record pointing at a listening peer, so a petrel
    # that ignored the null MX (or the NXDOMAIN) would show up there.
    port, (trap, good) = start_peers(start_peer, [(MX_A, "accept", {}),
                                                  (MX_B, "accept", {})])
    if case == "null_mx":
        bad, status = "nomail.example.net", "5.1.10"
        records = [null_mx(bad), host(bad, MX_A)]
    else:
        bad, status = "nosuch.example.net", "5.1.2"
        records = [host("other.example.net", MX_A)]   # the zone exists, bad does not
    with Dnsmasq(*records,
                 mx("example.net", "mx.example.net", 10),
                 host("mx.example.net", MX_B)) as dns:
        if case == "nxdomain":
            assert dns.query(bad, 15)[0] == 3, "NXDOMAIN"
        petrel = start_petrel(workdir, dns.server, port)
        failed = [f"user@{bad}"]
        delivered = ["bob@example.net"]
        content, msgid = make_message(subject=f"permanent DNS answer ({case})")
        qid, refused = submit(petrel, failed + delivered, content)
        assert refused == {}
        wait_delivered(good, delivered, WAIT)
        wait_maildir(workdir, "alice", 1, WAIT)
        petrel.stop()
    no_connections(trap)
    assert_exactly_once(good.stats(), delivered, msgid)
    assert failed[0] not in good.stats()["rcpt_attempts"]
    files = maildir_files(workdir, "alice")
    assert len(files) == 1, files
    with open(files[0], "rb") as f:
        check_failure_dsn(f.read(), failed, status, msgid)
    m = assert_spool(petrel, qid, {failed[0]: "failed", delivered[0]: "delivered"})
    if m is not None:
        d = next(d for d in m["recipients_detail"] if d["address"] == failed[0])
        assert d["attempts"] <= 1, "failed at once, not retried"


# ---- DNS trouble ---------------------------------------------------------------

@pytest.mark.parametrize("server", ["closed", "silent", "refused"])
def test_dns_server_not_answering_defers(workdir, server):
    """closed: nothing is bound at the server's port (ICMP port unreachable);
    silent: a UDP socket is bound there and never answers (timeouts);
    refused: dnsmasq answers REFUSED (example.net is in no zone it serves and
    it has no upstream). All three are transient: defer, no DSN."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.bind(("127.0.0.1", 0))
    dns_server = f"127.0.0.1:{holder.getsockname()[1]}"
    dns = None
    if server != "silent":
        holder.close()
    if server == "refused":
        dns = Dnsmasq(host("mx.example.test", MX_A))
        assert dns.query("example.net", 15)[0] == 5, "REFUSED"
        dns_server = dns.server
    try:
        petrel = start_petrel(workdir, dns_server, common_free_port([MX_A]))
        rcpt = "bob@example.net"
        content, msgid = make_message(subject=f"DNS server {server}")
        qid, refused = submit(petrel, [rcpt], content)
        assert refused == {}

        def tried():
            r = petrel.cli("queue", "list", "--json")
            rows = {m["id"]: m for m in json.loads(r.stdout)}
            m = rows.get(qid)
            assert m is not None, f"{qid} left the queue: {rows}"
            d = m["recipients_detail"][0]
            return d if d["attempts"] >= 1 and d["last_reply"] else None

        d = wait_for(tried, WAIT, "a first, deferred attempt")
        assert d["state"] == "pending", d
        assert re.search(r"dns|mx lookup|name serv", d["last_reply"], re.I), d
        petrel.stop()
    finally:
        holder.close()
        if dns is not None:
            dns.stop()
    m = assert_spool(petrel, qid, {rcpt: "pending"})
    assert m is not None
    d = m["recipients_detail"][0]
    assert d["attempts"] >= 1 and re.search(r"dns|mx lookup|name serv",
                                             d["last_reply"], re.I), d
    assert maildir_files(workdir, "alice") == [], "a deferral is not a failure: no DSN"
