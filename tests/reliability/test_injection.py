"""Control characters in commands and in peer replies (issue 5).

- CR, LF and NUL inside EHLO, MAIL and RCPT arguments and ESMTP parameters
  are refused; nothing of them reaches a header, a spool record or a DSN.
- Shell-looking addresses (`<;sleep 1;>`, `"$(touch F)"@...`) are inert data.
- A peer's reply text with control characters is sanitised before the log,
  the spool (`petrel queue show --json`) and DSNs.
"""
import glob
import json
import os
import re

from conftest import Dsn, Petrel, relay_config, session, wait_for

SENDER = "alice@example.test"
MARK = "X-Injected"
CTRL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")        # not TAB
CTRL_B = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")   # not TAB, CR, LF

# (where, the line with {c} standing for the control character).
INJECTIONS = [
    ("EHLO", "EHLO good.example{c}" + MARK + "-1: evil"),
    ("MAIL path", "MAIL FROM:<alice{c}" + MARK + "@example.test>"),
    ("MAIL ENVID", "MAIL FROM:<alice@example.test> ENVID=env{c}" + MARK + "-2"),
    ("MAIL RET", "MAIL FROM:<alice@example.test> RET=HDRS{c}" + MARK + "-3: evil"),
    ("RCPT path", "RCPT TO:<nobody{c}" + MARK + "@example.net>"),
    ("RCPT NOTIFY", "RCPT TO:<nobody2@example.net> NOTIFY=FAILURE{c}" + MARK + "-4: evil"),
    ("RCPT ORCPT", "RCPT TO:<nobody3@example.net> ORCPT=rfc822;n{c}" + MARK + "-5@example.net"),
]
CHARS = {"CR": "\r", "LF": "\n", "NUL": "\x00"}


def until_noop(c, limit=10):
    """Sends NOOP and reads every reply up to its 250 (bounded)."""
    c.send(b"NOOP\r\n")
    out = []
    for _ in range(limit):
        r = c.reply()
        if r[1][-1] == "250 2.0.0 Ok":
            return out
        out.append(r)
    raise AssertionError(f"no NOOP reply: {out}")


def inject(p, where, line):
    """One session: the injected line stands in for its command in an
    otherwise ordinary transaction. Returns the replies to the injected line."""
    c = p.connect()
    assert c.reply()[0] == 220
    if where != "EHLO":
        assert c.cmd("EHLO client.example")[0] == 250
    if where.startswith("RCPT"):
        assert c.cmd(f"MAIL FROM:<{SENDER}>")[0] == 250
    c.send(line.encode() + b"\r\n")
    got = []
    try:
        got = until_noop(c)
        if where == "EHLO":
            c.cmd(f"MAIL FROM:<{SENDER}>")
        elif where.startswith("MAIL") and not any(r[0] == 250 for r in got):
            c.cmd(f"MAIL FROM:<{SENDER}>")
        c.cmd("RCPT TO:<nobody@example.net>")
        if c.cmd("DATA")[0] == 354:
            c.cmd(b"Subject: injection\r\nMessage-ID: <inj@example.test>\r\n\r\nbody\r\n.")
        c.cmd("QUIT")
    except (EOFError, OSError):
        got = got or [(421, ["(connection closed)"])]   # closing is a refusal too
    c.close()
    return got


def strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from strings(v)


def header_section(content):
    return content.split(b"\r\n\r\n", 1)[0]


def all_mail(workdir):
    return sorted(glob.glob(os.path.join(workdir, "mail", "*", "*", "new", "*"))
                  + glob.glob(os.path.join(workdir, "mail", "*", "*", "cur", "*")))


def test_control_characters_in_commands(workdir, start_peer, row):
    # Phase 1: delivery off, so the spool records can be read afterwards.
    p = Petrel(workdir)
    results = {}
    p.start()
    for cname, ch in CHARS.items():
        for where, template in INJECTIONS:
            got = inject(p, where, template.format(c=ch))
            results[(cname, where)] = [r[1][0] for r in got]
    p.stop()
    msgs = p.spool_messages()
    in_records = [s for m in msgs for s in strings(m) if MARK in s or CTRL.search(s)]
    in_headers = []
    for m in msgs:
        h = header_section(p.spool_content(m["id"]))
        if MARK.encode() in h or CTRL_B.search(h) or re.search(rb"(?<!\r)\n|\r(?!\n)", h):
            in_headers.append(m["id"])
    # Phase 2: the same spool, delivery on, to a peer that refuses every
    # recipient: each message gives a DSN to alice (local).
    peer = start_peer("reject_some", reject_regex=".")
    p.extra_config = relay_config({"example.net": peer})
    p.write_config()
    p.start()
    wait_for(lambda: json.loads(p.cli("queue", "list", "--json").stdout) == [], 60,
             "every message bounced and every DSN delivered")
    p.stop()
    dsns = all_mail(workdir)
    in_dsns = []
    for f in dsns:
        with open(f, "rb") as fh:
            raw = fh.read()
        if MARK.encode() in raw or CTRL_B.search(raw):
            in_dsns.append(f)
    refused = {k: v for k, v in results.items() if v and v[0][:1] in "45"}
    split = {k: v for k, v in results.items() if k[0] == "LF"}
    # With LF the line ends at the LF (bare LF ends a command line, as in
    # Postfix); the fragment after it must be refused as a command.
    lf_fragments_refused = sum(1 for v in split.values()
                               if len(v) >= 2 and v[-1][:1] == "5")
    cr_nul = {k: v for k, v in results.items() if k[0] != "LF"}
    row("3 injection", f"CR, NUL, LF in EHLO, MAIL, RCPT and ESMTP params "
        f"({len(results)} commands)",
        f"CR/NUL refused {sum(1 for k in cr_nul if k in refused)}/{len(cr_nul)}; "
        f"LF: line split, fragment refused {lf_fragments_refused}/{len(split)}; "
        f"{len(msgs)} messages queued: marker or control chars in spool records "
        f"{len(in_records)}, in headers {len(in_headers)}, in {len(dsns)} DSNs "
        f"{len(in_dsns)}")
    for k, v in cr_nul.items():
        assert v and v[0][:1] in "45", (k, v)
    assert lf_fragments_refused == len(split), split
    assert not in_records, in_records[:5]
    assert not in_headers, in_headers
    assert len(dsns) == len(msgs) and len(msgs) > 0
    assert not in_dsns, in_dsns


INERT = [
    '";sleep 1;"@example.net',
    '"$(touch {mark})"@example.net',
    '"`touch {mark}`"@example.net',
    '"|touch {mark}"@example.test',
    '";sleep 1;"@example.test',
    '"../../../{base}"@example.test',
]


def test_shell_looking_addresses_are_inert(workdir, start_peer, row):
    mark = os.path.join(workdir, "PWNED")
    peer = start_peer("accept")
    p = Petrel(workdir, extra_config=relay_config({"example.net": peer})).start()
    c = session(p)
    bare = c.cmd("MAIL FROM:<;sleep 1;>")
    bare_rcpt_mail = c.cmd(f"MAIL FROM:<{SENDER}>")
    assert bare_rcpt_mail[0] == 250
    bare_rcpt = c.cmd("RCPT TO:<;sleep 1;>")
    addrs = [a.format(mark=mark, base=os.path.basename(workdir) + "-escaped")
             for a in INERT]
    replies = {a: c.cmd(f"RCPT TO:<{a}>") for a in addrs}
    accepted = [a for a, r in replies.items() if r[0] == 250]
    assert c.cmd("DATA")[0] == 354
    code, lines = c.cmd(b"Subject: inert\r\n\r\nbody\r\n.")
    assert code == 250
    c.cmd("QUIT")
    c.close()
    remote = [a for a in accepted if a.endswith("@example.net")]
    st = peer.wait_for(lambda s: sum(s["delivered"].values()) >= len(remote), 60,
                       "the remote recipients at the peer")
    wait_for(lambda: json.loads(p.cli("queue", "list", "--json").stdout) == [], 60,
             "the queue to empty")
    p.stop()
    verbatim = [a for a in remote if st["delivered"].get(a, 0) == 1]
    escaped = os.path.exists(os.path.join(os.path.dirname(workdir),
                                          os.path.basename(workdir) + "-escaped"))
    stray = [f for f in glob.glob(os.path.join(workdir, "**"), recursive=True)
             if os.path.isfile(f) and not f.startswith(os.path.join(workdir, "mail"))
             and not f.startswith(os.path.join(workdir, "spool"))
             and not f.startswith(os.path.join(workdir, "peer"))
             and os.path.basename(f) not in ("petrel.toml", "petrel.log")]
    row("3 injection", "`<;sleep 1;>`, `\"$(touch F)\"@`, backticks, `\"|cmd\"@`, "
        "`\"../../x\"@` local",
        f"bare `<;sleep 1;>` MAIL {bare[0]}, RCPT {bare_rcpt[0]}; quoted: "
        f"{len(accepted)}/{len(addrs)} accepted as data, {len(verbatim)}/{len(remote)} "
        f"relayed verbatim; files created by them {int(os.path.exists(mark)) + len(stray)}; "
        f"path escape {int(escaped)}")
    assert bare[0] == 501 and bare_rcpt[0] == 501
    assert not os.path.exists(mark), "a command in an address was run"
    assert not escaped and not stray, stray
    assert verbatim == remote, (remote, st["delivered"])


EVIL_TEMP = "451 4.7.1 try later\x1b[2J\x1b]0;owned\x07 bell\x08\x7f\x01 \u009b31m end"
EVIL_PERM = "550 5.1.1 no such user\x1b[31m red\x07\x0b\x0c\x1b]8;;http://x\x07 end"
BAD_OUT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]")


def test_peer_reply_control_characters_are_sanitised(workdir, start_peer, row):
    temp = start_peer("accept", at="rcpt", fault=EVIL_TEMP, nth=1, times=0)
    perm = start_peer("accept", at="rcpt", fault=EVIL_PERM, nth=1, times=0)
    p = Petrel(workdir, extra_config=relay_config(
        {"temp.example": temp, "perm.example": perm})).start()
    c = session(p)
    c.cmd(f"MAIL FROM:<{SENDER}>")
    assert c.cmd("RCPT TO:<t@temp.example>")[0] == 250
    assert c.cmd("RCPT TO:<u@perm.example>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    code, lines = c.cmd(b"Subject: sanitise\r\n\r\nbody\r\n.")
    qid = lines[-1].split()[-1]
    c.cmd("QUIT")
    c.close()
    wait_for(lambda: all_mail(workdir), 60, "the DSN for u@perm.example")
    temp.wait_for(lambda s: s["rcpt_attempts"].get("t@temp.example", 0) >= 1, 60,
                  "the temporary failure")
    show = wait_for(lambda: (lambda r: r.returncode == 0 and "try later" in r.stdout and r)(
        p.cli("queue", "show", qid, "--json", check=False)), 60, "the reply in the queue")
    shown = json.loads(show.stdout)
    # Header text keeps its CRLF and TAB; nothing else may carry controls.
    shown_bad = [s for s in strings(shown)
                 if BAD_OUT.search(s.replace("\r\n", "").replace("\t", ""))]
    replies_shown = [s for s in strings(shown) if "try later" in s]
    raw_json_bad = bool(re.search(r"[\x00-\x1f\x7f]", show.stdout.replace("\n", "")))
    p.stop()
    log = p.read_log().decode("utf-8", "replace")
    log_lines = [l for l in log.splitlines() if "try later" in l or "no such user" in l]
    log_bad = [l for l in log_lines if BAD_OUT.search(l)]
    dsn_bad = []
    dsns = all_mail(workdir)
    for f in dsns:
        with open(f, "rb") as fh:
            raw = fh.read()
        Dsn(raw)
        if BAD_OUT.search(raw.decode("utf-8", "replace").replace("\n", "").replace("\t", "")):
            dsn_bad.append(f)
    with open(dsns[0], "rb") as fh:
        dsn_text = fh.read().decode("utf-8", "replace")
    m = re.search(r"try later.*? end", log)
    row("3 injection", "peer replies with ESC, BEL, BS, DEL, VT, FF, C1 CSI (451 and 550)",
        f"logged as `{m.group(0) if m else '?'}`; "
        f"log lines {len(log_lines)} ({len(log_bad)} with controls); queue show "
        f"strings with controls {len(shown_bad)}; DSNs {len(dsns)} "
        f"({len(dsn_bad)} with controls)")
    assert log_lines and not log_bad, log_bad
    assert replies_shown and not shown_bad and not raw_json_bad, shown_bad
    assert len(dsns) == 1 and not dsn_bad
    assert "no such user" in dsn_text
