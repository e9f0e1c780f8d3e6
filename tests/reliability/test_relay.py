"""Open relay, loops and bounces (issue 5).

- From an untrusted client (127.0.0.1 not in trusted_networks), every
  address form that has been used to relay through a mail server is refused.
- A route that points back at petrel itself bounces with 5.4.6 "loops back
  to myself"; two petrels routing a domain to each other stop at the
  Received limit instead of relaying forever.
- A message whose recipients all fail gives one DSN, and the DSN's copy of
  the original is bounded in size, for a large body and a large header.
"""
import glob
import json
import os
import time

import pytest

from conftest import (Dsn, Petrel, SENDER, make_message, maildir_files,
                      relay_config, session, submit, wait_for, wait_maildir)

ATTACKS = [
    "v@ext.example",
    "v%ext.example@example.test",
    "@example.test:v@ext.example",
    '"v@ext.example"@example.test',
    "ext.example!v@example.test",
    "v@[192.0.2.1]",
    "v@[IPv6:::1]",
    "v@ext.example.",
    "v@example.test.ext.example",
    "v%ext.example@[127.0.0.1]",
]


def test_open_relay_from_an_untrusted_client(workdir, start_peer, row):
    """Every other domain is routed to a peer ("*"), so anything relayed
    would show up there. (petrel's own address literal, [127.0.0.1], names
    petrel itself: see test_own_address_literal_is_delivered_once.)"""
    peer = start_peer("accept")
    p = Petrel(workdir, trusted=(), extra_config=relay_config({"*": peer})).start()
    c = session(p)
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    replies = {a: c.cmd(f"RCPT TO:<{a}>") for a in ATTACKS}
    # The control: a local recipient is accepted (the test is not vacuous).
    control = c.cmd("RCPT TO:<postmaster@example.test>")
    assert c.cmd("DATA")[0] == 354
    code, _ = c.cmd(b"Subject: relay?\r\n\r\nbody\r\n.")
    c.cmd("QUIT")
    c.close()
    wait_for(lambda: json.loads(p.cli("queue", "list", "--json").stdout) == [], 60,
             "the queue to empty")
    p.stop()
    relayed = sum(peer.stats()["delivered"].values())
    local = sorted(os.path.relpath(os.path.dirname(os.path.dirname(f)),
                                   os.path.join(workdir, "mail"))
                   for f in glob.glob(os.path.join(workdir, "mail", "*", "*", "new", "*")))
    accepted = [a for a, r in replies.items() if r[0] < 400]
    relay_denied = sum(1 for r in replies.values() if r[1][0].startswith("554 5.7.1"))
    other = {a: r[1][0] for a, r in replies.items()
             if r[0] >= 500 and not r[1][0].startswith("554 5.7.1")}
    row("5 open relay", f"{len(ATTACKS)} relay tricks from an untrusted 127.0.0.1 "
        "(`v@ext`, `v%ext@local`, `@local:v@ext`, `\"v@ext\"@local`, `ext!v@local`, "
        "`v@[ip]`, trailing dot, ...); `*` routed to a peer",
        f"accepted {accepted or 0}; 554 5.7.1 {relay_denied}; other 5xx {len(other)} "
        f"({', '.join(sorted({v[:9] for v in other.values()}))}); control local rcpt "
        f"{control[0]}; relayed to the peer {relayed}; delivered locally to {local}")
    assert relayed == 0
    assert not accepted, accepted
    assert all(r[0] >= 500 for r in replies.values()), replies
    assert control[0] == 250 and code == 250
    assert local == ["example.test/postmaster"], local


def test_own_address_literal_is_delivered_once(workdir, row):
    p = Petrel(workdir, trusted=(), extra_config=relay_config({})).start()
    c = session(p)
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    rcpt = c.cmd("RCPT TO:<v@[127.0.0.1]>")
    assert c.cmd("DATA")[0] == 354
    code, _ = c.cmd(b"Subject: to my own address literal\r\n\r\nbody\r\n.")
    c.cmd("QUIT")
    c.close()
    try:
        wait_for(lambda: json.loads(p.cli("queue", "list", "--json").stdout) == [], 10,
                 "the queue to empty")
    except AssertionError:
        pass
    before = p.read_log().count(b"queued for alias expansion")
    time.sleep(1.0)        # a settled queue stays settled
    after = p.read_log().count(b"queued for alias expansion")
    settled = after == before
    p.stop()
    log = p.read_log().decode(errors="replace")
    requeued = log.count("queued for alias expansion")
    files = glob.glob(os.path.join(workdir, "mail", "*", "*", "new", "*"))
    row("6 loops", "untrusted client: `RCPT TO:<v@[127.0.0.1]>` (petrel's own IP literal)",
        f"RCPT {rcpt[0]}, DATA {code}; re-queued 'for alias expansion' {requeued} times; "
        f"still looping: {not settled}; Maildir files {len(files)} "
        f"({', '.join(sorted(os.path.relpath(f, workdir).split(os.sep)[2] for f in files))})")
    assert requeued <= 10, f"{requeued} internal re-queues: an endless loop"
    assert settled
    # v@[our address] is v@ the first local domain (Postfix: $myhostname).
    assert [os.path.relpath(f, workdir).split(os.sep)[1:3] for f in files] == \
        [["example.test", "v"]], files


def dsns(workdir, user="alice"):
    return maildir_files(workdir, user)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_route_back_to_myself_bounces(workdir, row):
    p = Petrel(workdir)
    # The route names petrel's own listener.
    p.extra_config = relay_config({"loop.example": f"127.0.0.1:{p.port}"})
    p.write_config()
    p.start()
    content, msgid = make_message(subject="loop")
    qid, refused = submit(p, ["v@loop.example", "w@loop.example"], content)
    assert not refused
    [f] = wait_maildir(workdir, "alice", 1, timeout=60)
    wait_for(lambda: json.loads(p.cli("queue", "list", "--json").stdout) == [], 60,
             "the queue to empty")
    p.stop()
    log = p.read_log().decode(errors="replace")
    d = Dsn(read(f))
    statuses = {a: str(b["Status"]).strip() for a, b in d.per_recipient.items()}
    diag = " ".join(str(b["Diagnostic-Code"]) for b in d.per_recipient.values())
    connects = log.count(": connect from unknown")
    row("6 loops", "a route to petrel's own listener, 2 recipients",
        f"DSN statuses {statuses}; 'loops back to myself' in DSN "
        f"{'loops back to myself' in diag}; SMTP sessions petrel opened to itself "
        f"{connects - 1}; DSNs {len(dsns(workdir))}")
    assert statuses == {"v@loop.example": "5.4.6", "w@loop.example": "5.4.6"}
    assert "loops back to myself" in diag
    assert connects == 1, "petrel connected to itself"
    assert len(dsns(workdir)) == 1


def test_two_petrels_routing_to_each_other_stop_at_the_hop_limit(workdir, row):
    hops = 6
    for sub in ("a", "b"):
        os.makedirs(os.path.join(workdir, sub))
    a = Petrel(os.path.join(workdir, "a"))
    b = Petrel(os.path.join(workdir, "b"), local_domains=("b.test",))
    limit = f"\n[limits]\nmax_received_headers = {hops}\n"
    a.extra_config = relay_config({"pingpong.example": f"127.0.0.1:{b.port}"}) + limit
    b.extra_config = relay_config({"pingpong.example": f"127.0.0.1:{a.port}"}) + limit
    a.write_config()
    b.write_config()
    a.start()
    b.start()
    content, msgid = make_message(subject="ping pong")
    qid, refused = submit(a, ["v@pingpong.example"], content)
    assert not refused
    # The bounce goes to alice@example.test, local on a: wait for it there.
    [f] = wait_maildir(a.dir, "alice", 1, timeout=120)

    def empty(p):
        return json.loads(p.cli("queue", "list", "--json").stdout) == []
    wait_for(lambda: empty(a) and empty(b), 60, "both queues to empty")
    a.stop()
    b.stop()
    log_a = a.read_log().decode(errors="replace")
    log_b = b.read_log().decode(errors="replace")
    queued = log_a.count("(queue active)") + log_b.count("(queue active)")
    too_many = (log_a + log_b).count("Too many hops")
    d = Dsn(read(f))
    [(addr, blk)] = d.per_recipient.items()
    status = str(blk["Status"]).strip()
    row("6 loops", f"two petrels route one domain to each other "
        f"(max_received_headers = {hops})",
        f"times queued (both, incl. the DSN) {queued}; `554 5.4.6 Too many hops` "
        f"{too_many}; DSN to alice status {status}")
    assert status.startswith("5."), status
    assert too_many >= 1
    assert queued <= hops + 3, "relayed more often than the hop limit allows"


@pytest.mark.parametrize("kind", ["body", "header"])
def test_one_bounded_dsn_for_many_failed_recipients(workdir, start_peer, row, kind):
    n_rcpts = 50
    peer = start_peer("reject_some", reject_regex=".")
    # The 2 MB header is over the default limits.max_header_size (1 MiB):
    # raised here, as this case is about the DSN's copy of it.
    p = Petrel(workdir, extra_config=relay_config(
        {"example.net": peer}, extra='\n[limits]\nmax_header_size = "4MiB"\n')).start()
    rcpts = [f"r{i:02d}@example.net" for i in range(n_rcpts)]
    if kind == "body":
        big = b"Subject: big body\r\nMessage-ID: <big@example.test>\r\n\r\n" \
            + (b"b" * 998 + b"\r\n") * 5000            # about 5 MB
        params = " RET=FULL"
    else:
        big = b"Subject: big header\r\nMessage-ID: <big@example.test>\r\n" \
            + b"".join(b"X-Filler-%06d: some header value\r\n" % i for i in range(60000)) \
            + b"\r\nsmall body\r\n"
        params = ""
    c = session(p)
    assert c.cmd(f"MAIL FROM:<{SENDER}>{params}")[0] == 250
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(big.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    assert c.reply()[0] == 250
    c.cmd("QUIT")
    c.close()
    wait_maildir(workdir, "alice", 1, timeout=120)
    wait_for(lambda: json.loads(p.cli("queue", "list", "--json").stdout) == [], 60,
             "the queue to empty")
    p.stop()
    files = dsns(workdir)
    sizes = [len(read(f)) for f in files]
    d = Dsn(read(files[0]))
    returned = len(d.returned or b"")
    row("7 bounces", f"{n_rcpts} recipients all refused 550, original with a "
        f"{len(big) // 1024} KiB {kind}" + (" (RET=FULL)" if params else ""),
        f"DSNs {len(files)} naming {len(d.per_recipient)} recipients; DSN size "
        f"{sizes[0]} octets, returned copy {returned} octets")
    assert len(files) == 1
    assert len(d.per_recipient) == n_rcpts
    assert sizes[0] <= 256 * 1024, f"DSN of {sizes[0]} octets"
