"""RFC 5321 4.5.3.1 limits on the real server, each at the limit and one past
it (seed 004), with raw sockets so every octet is ours."""
import pytest

from conftest import Petrel, queued_id


def session(p):
    c = p.connect()
    assert c.reply()[0] == 220
    assert c.cmd("EHLO client.example")[0] == 250
    return c


def test_command_line_512_and_513(petrel):
    c = session(petrel)
    line = "NOOP " + "x" * (512 - 2 - 5)
    assert len(line) + 2 == 512
    assert c.cmd(line)[0] == 250
    code, lines = c.cmd(line + "x")
    assert code == 500 and lines[0].startswith("500 5.5.2 Line too long")
    # In step afterwards: the next command gets its own reply.
    assert c.cmd("NOOP") == (250, ["250 2.0.0 Ok"])
    # A 10 MB line is read to its end and discarded.
    c.send(b"NOOP " + b"y" * (10 * 1024 * 1024) + b"\r\nNOOP\r\n")
    assert c.reply()[0] == 500
    assert c.reply()[0] == 250


def test_local_part_64_and_65(petrel):
    c = session(petrel)
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    assert c.cmd(f"RCPT TO:<{'l' * 64}@example.test>")[0] == 250
    code, lines = c.cmd(f"RCPT TO:<{'l' * 65}@example.test>")
    assert code == 501 and "5.1.3" in lines[0]
    assert c.cmd("RSET")[0] == 250
    code, lines = c.cmd(f"MAIL FROM:<{'l' * 65}@remote.example>")
    assert code == 501 and "5.1.7" in lines[0]


def long_domain(total):
    labels, left = [], total
    while left > 0:
        n = min(63, left)
        if left - n == 1:  # avoid a trailing single dot
            n -= 1
        labels.append("d" * n)
        left -= n + 1
    d = ".".join(labels)
    assert len(d) == total, len(d)
    return d


def test_domain_255_and_256(petrel):
    # A 255-octet domain cannot fit a path (256 with "<", "@", ">" and a
    # local part), so the domain limit is checked where a domain stands
    # alone, in EHLO, and in a path where it is the reason given.
    d255, d256 = long_domain(255), long_domain(256)
    c = session(petrel)
    assert c.cmd(f"EHLO {d255}")[0] == 250
    code, lines = c.cmd(f"EHLO {d256}")
    assert code == 501, lines
    assert c.cmd("EHLO client.example")[0] == 250
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    code, lines = c.cmd(f"RCPT TO:<a@{d256}>")
    assert code == 501 and "5.1.3" in lines[0], lines


def test_path_256_and_257(petrel):
    c = session(petrel)
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    # "<" + local(64) + "@" + domain + ">" == 256
    domain = long_domain(256 - 2 - 64 - 1 - len(".example.test")) + ".example.test"
    path = f"<{'l' * 64}@{domain}>"
    assert len(path) == 256
    code, lines = c.cmd(f"RCPT TO:{path}")
    # Well-formed, and the client is trusted: accepted.
    assert code == 250, lines
    path257 = f"<{'l' * 63}@x.{domain}>"
    assert len(path257) == 257
    code, lines = c.cmd(f"RCPT TO:{path257}")
    assert code == 501 and "5.1.3" in lines[0] and "too long" in lines[0].lower(), lines


def test_recipient_buffer_100_and_101(workdir):
    p = Petrel(workdir, extra_config="[limits]\nmax_recipients = 100\n").start()
    try:
        c = session(p)
        code, lines = c.cmd("EHLO c")
        assert "LIMITS RCPTMAX=100" in [l[4:] for l in lines]
        c.cmd("MAIL FROM:<a@remote.example>")
        c.send("".join(f"RCPT TO:<u{i}@example.test>\r\n" for i in range(101)))
        replies = [c.reply() for _ in range(101)]
        assert all(r[0] == 250 for r in replies[:100])
        assert replies[100] == (452, ["452 4.5.3 Too many recipients"])
        assert c.cmd("DATA")[0] == 354
        code, lines = c.cmd(b"Subject: many\r\n\r\nhi\r\n.")
        assert code == 250
        qid = queued_id(lines)
        c.cmd("QUIT")
    finally:
        p.stop()
    [m] = p.spool_messages()
    assert m["id"] == qid and len(m["recipients"]) == 100


def test_max_recipients_below_100_is_a_config_error(workdir):
    p = Petrel(workdir, extra_config="[limits]\nmax_recipients = 99\n")
    r = p.cli("check-config", check=False)
    assert r.returncode == 1
    assert "limits.max_recipients" in r.stderr and ":" in r.stderr


def test_size_at_mail_and_during_data(workdir):
    p = Petrel(workdir, extra_config="[limits]\nmax_message_size = 65536\n").start()
    try:
        c = session(p)
        code, lines = c.cmd("MAIL FROM:<a@remote.example> SIZE=65537")
        assert code == 552 and "5.3.4" in lines[0]
        assert c.cmd("MAIL FROM:<a@remote.example> SIZE=65536")[0] == 250
        assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        # 64 KiB exactly, in lines of 1000 octets (the text-line limit).
        line = b"a" * 998 + b"\r\n"
        body = line * 65 + b"b" * (65536 - 65 * 1000 - 2) + b"\r\n"
        assert len(body) == 65536
        c.send(body + b".\r\n")
        code, lines = c.reply()
        assert code == 250, lines
        # One octet more: 552 after the data, and the session stays usable.
        c.cmd("MAIL FROM:<a@remote.example>")
        c.cmd("RCPT TO:<b@example.test>")
        assert c.cmd("DATA")[0] == 354
        c.send(b"x" + body + b".\r\n")
        code, lines = c.reply()
        assert code == 552 and "5.3.4" in lines[0]
        assert c.cmd("NOOP")[0] == 250
        c.cmd("QUIT")
    finally:
        p.stop()
    assert len(p.spool_ids()) == 1


def test_text_lines_of_1000_and_longer_are_kept(petrel):
    c = session(petrel)
    c.cmd("MAIL FROM:<a@remote.example>")
    c.cmd("RCPT TO:<b@example.test>")
    assert c.cmd("DATA")[0] == 354
    l1000 = b"x" * 998 + b"\r\n"
    l5000 = b"y" * 4998 + b"\r\n"
    c.send(b"Subject: long\r\n\r\n" + l1000 + l5000 + b"..dot\r\n.\r\n")
    code, lines = c.reply()
    assert code == 250
    qid = queued_id(lines)
    c.cmd("QUIT")
    petrel.stop()
    assert petrel.spool_content(qid).endswith(l1000 + l5000 + b".dot\r\n")


def test_reply_lines_fit_512(petrel):
    c = session(petrel)
    for cmd in ("HELP", "VRFY x", "NOOP", "RSET", "EXPN x", "BOGUS"):
        code, lines = c.cmd(cmd)
        assert all(len(l) + 2 <= 512 for l in lines)


def test_received_headers_at_the_limit_and_one_past(workdir):
    p = Petrel(workdir, extra_config="[limits]\nmax_received_headers = 3\n").start()
    try:
        c = session(p)
        for hops, expected in ((3, 250), (4, 554)):
            c.cmd("MAIL FROM:<a@remote.example>")
            c.cmd("RCPT TO:<b@example.test>")
            assert c.cmd("DATA")[0] == 354
            hdrs = "".join(f"Received: from hop{i}.example by x; Mon, 1 Jan 2026 00:00:00 +0000\r\n"
                           for i in range(hops))
            code, lines = c.cmd(hdrs + "Subject: loop?\r\n\r\nbody\r\n.")
            assert code == expected, lines
            if code == 554:
                assert lines[0] == "554 5.4.6 Too many hops"
        c.cmd("QUIT")
    finally:
        p.stop()
    assert len(p.spool_ids()) == 1


def test_global_connection_limit(workdir):
    p = Petrel(workdir, extra_config="[limits]\nmax_connections = 2\n").start()
    try:
        a, b = p.connect(), p.connect()
        assert a.reply()[0] == 220 and b.reply()[0] == 220
        c = p.connect()
        code, lines = c.reply()
        assert code == 421 and lines[0].startswith("421 4.7.0")
    finally:
        p.stop()
