"""SMTP smuggling (issue 5): every end-of-data look-alike, followed in the
same write by a second MAIL/RCPT/DATA, gives exactly one message or a
refusal, never two. petrel relays what it accepts to the scripted peer,
which keeps the raw data of every transaction: the relayed octets are CRLF
only, dot-stuffed, and hold exactly one end of data. Dot lines round-trip.
"""
import os
import re

import pytest

from conftest import (Petrel, relay_config, session, wait_for)

SENDER = "alice@example.test"
VICTIM = "bob@example.net"
SMUGGLED_RCPT = "eve@example.net"

# name -> the octets that stand where a real <CRLF>.<CRLF> would.
VARIANTS = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CR": b"\r.\r",
    "CR.LF": b"\r.\n",
    "LF.CR": b"\n.\r",
    "CRLF.CR": b"\r\n.\r",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CRCRLF": b"\r\n.\r\r\n",
    "CRLF NUL.CRLF": b"\r\n\x00.\r\n",
}


def relay_petrel(workdir, peer):
    return Petrel(workdir, extra_config=relay_config({"example.net": peer})).start()


def raw_files(peer):
    d = peer.state_path + ".d"
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".raw"))


def check_raw(raw):
    """The data of one relayed transaction as the peer received it (from
    after the DATA line up to and including the final ".CRLF"). Returns a
    list of problems (empty: CRLF only, dot-stuffed, one end of data)."""
    problems = []
    if re.search(rb"(?<!\r)\n|\r(?!\n)", raw):
        problems.append("bare CR or LF")
    scan = b"\r\n" + raw
    ends = scan.count(b"\r\n.\r\n")
    if ends != 1 or not scan.endswith(b"\r\n.\r\n"):
        problems.append(f"{ends} ends of data")
    lines = raw.split(b"\r\n")[:-2]       # without the final "." and ""
    unstuffed = [l for l in lines if l.startswith(b".") and not l.startswith(b"..")]
    if unstuffed:
        problems.append(f"{len(unstuffed)} dot line(s) not stuffed")
    return problems


@pytest.mark.parametrize("name", list(VARIANTS))
def test_end_of_data_variant_never_makes_two_messages(workdir, start_peer, row, name):
    variant = VARIANTS[name]
    peer = start_peer("accept")
    p = relay_petrel(workdir, peer)
    c = session(p)
    c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{VICTIM}>\r\n")
    assert c.reply()[0] == 250 and c.reply()[0] == 250
    assert c.cmd("DATA")[0] == 354
    # The attack: one write, a fake end of data, then a whole second
    # transaction whose real end of data ends the write.
    c.send(b"Subject: first\r\n\r\nfirst part" + variant
           + f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<{SMUGGLED_RCPT}>\r\nDATA\r\n".encode()
           + b"Subject: smuggled\r\n\r\nsecond part\r\n.\r\n")
    # Every reply to the write, up to the answer to a NOOP sent after it
    # (bounded; a petrel that closes the session here is fine too).
    replies = []
    try:
        replies.append(c.reply())
        c.send(b"NOOP\r\n")
        for _ in range(10):
            r = c.reply()
            if r[1][-1].startswith("250 2.0.0 Ok") and "queued" not in r[1][-1]:
                break
            replies.append(r)
    except (EOFError, OSError):
        pass
    c.close()
    queued = [r for r in replies if r[0] == 250 and "queued as" in r[1][-1]]
    # A control message: when it reaches the peer, anything accepted before
    # it has been relayed too.
    c = session(p)
    c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<control@example.net>\r\n")
    assert c.reply()[0] == 250 and c.reply()[0] == 250
    assert c.cmd("DATA")[0] == 354
    assert c.cmd(b"Subject: control\r\n\r\ncontrol\r\n.")[0] == 250
    c.cmd("QUIT")
    c.close()
    st = peer.wait_for(lambda s: s["delivered"].get("control@example.net", 0) >= 1
                       and s["delivered"].get(VICTIM, 0) >= len(queued),
                       60, "the control message at the peer")
    wait_for(lambda: p.cli("queue", "list", "--json").stdout.strip() == "[]", 60,
             "petrel's queue to empty")
    p.stop()
    delivered = [t for t in st["transactions"] if t["outcome"] == "delivered"]
    attack = [t for t in delivered if "control@example.net" not in t["rcpts_accepted"]]
    problems = {}
    for f in raw_files(peer):
        with open(f, "rb") as fh:
            pr = check_raw(fh.read())
        if pr:
            problems[os.path.basename(f)] = pr
    smuggled = st["delivered"].get(SMUGGLED_RCPT, 0)
    row("1 smuggling", f"`{name}` then MAIL/RCPT/DATA in one write",
        f"replies {[r[0] for r in replies]}; queued {len(queued)}; "
        f"relayed {len(attack)}; smuggled rcpt delivered {smuggled}; "
        f"raw problems {len(problems)}")
    assert len(queued) <= 1
    assert len(attack) == len(queued), "the peer saw what petrel accepted, once"
    assert smuggled == 0, "the smuggled transaction reached the peer"
    assert not problems, problems
    assert st["violations"] == [], st["violations"]
    if queued:
        # The one message accepted holds the would-be second transaction as
        # text, and the peer got it in one transaction.
        [t] = attack
        with open(t["content_file"], "rb") as fh:
            content = fh.read()
        assert b"second part" in content and b"Subject: smuggled" in content


DOT_BODY = b"Subject: dots\r\n\r\n.\r\n..\r\n.x\r\n...\r\nend\r\n.\r\n"
DOT_WIRE = b"Subject: dots\r\n\r\n..\r\n...\r\n..x\r\n....\r\nend\r\n..\r\n"


def test_dot_lines_round_trip(workdir, start_peer, row):
    """`.`, `..`, `.x` (and `...`, and a last line `.`) sent with DATA
    (stuffed) and with BDAT (not stuffed) reach the peer byte for byte."""
    peer = start_peer("accept")
    p = relay_petrel(workdir, peer)
    c = session(p)
    c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<dots-data@example.net>\r\n")
    assert c.reply()[0] == 250 and c.reply()[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(DOT_WIRE + b".\r\n")
    assert c.reply()[0] == 250
    c.send(f"MAIL FROM:<{SENDER}>\r\nRCPT TO:<dots-bdat@example.net>\r\n".encode()
           + b"BDAT %d LAST\r\n" % len(DOT_BODY) + DOT_BODY)
    assert [c.reply()[0] for _ in range(3)] == [250, 250, 250]
    c.cmd("QUIT")
    c.close()
    st = peer.wait_for(lambda s: s["delivered"].get("dots-data@example.net", 0) >= 1
                       and s["delivered"].get("dots-bdat@example.net", 0) >= 1,
                       60, "both messages at the peer")
    p.stop()
    ok = 0
    results = {}
    for t in st["transactions"]:
        if t["outcome"] != "delivered":
            continue
        with open(t["content_file"], "rb") as fh:
            content = fh.read()
        with open(t["raw_file"], "rb") as fh:
            raw = fh.read()
        good = (content.endswith(b"\r\n\r\n" + DOT_BODY.split(b"\r\n\r\n", 1)[1])
                and raw.endswith(b"\r\n" + DOT_WIRE.split(b"\r\n\r\n", 1)[1] + b".\r\n")
                and not check_raw(raw))
        results[t["rcpts_accepted"][0]] = good
        ok += good
    row("1 smuggling", "dot lines `.` `..` `.x` `...` via DATA and via BDAT, relayed",
        f"{ok}/2 byte for byte at the peer (stuffed on the wire, unstuffed content)")
    assert results == {"dots-data@example.net": True, "dots-bdat@example.net": True}, results
