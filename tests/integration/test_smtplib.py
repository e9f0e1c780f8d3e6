"""Python's smtplib against the real server: what an ordinary client sees."""
import smtplib
from email import policy
from email.message import EmailMessage

from conftest import queued_id


def make_message(subject="hello", body="Hi.\n", to="bob@example.test"):
    m = EmailMessage()
    m["From"] = "alice@remote.example"
    m["To"] = to
    m["Subject"] = subject
    m.set_content(body)
    return m


def test_send_and_find_in_spool(petrel):
    with smtplib.SMTP(petrel.host, petrel.port, timeout=30) as s:
        code, banner = s.ehlo("client.example")
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "smtputf8", "chunking",
                    "dsn", "enhancedstatuscodes", "limits"):
            assert s.has_extn(ext), ext
        assert s.esmtp_features["limits"] == "RCPTMAX=1000"
        s.mail("alice@remote.example")
        s.rcpt("bob@example.test")
        code, text = s.data(make_message().as_bytes(policy=policy.SMTP))
        assert code == 250
        qid = queued_id([text.decode()])
    petrel.stop()
    msgs = petrel.spool_messages()
    assert [m["id"] for m in msgs] == [qid]
    assert msgs[0]["sender"] == "alice@remote.example"
    assert msgs[0]["recipients"] == ["bob@example.test"]
    content = petrel.spool_content(qid)
    assert content.startswith(b"Received: from client.example (unknown [127.0.0.1])\r\n")
    assert b"\r\nSubject: hello\r\n" in content
    assert f"id {qid}".encode() in content


def test_many_messages_one_connection_and_dsn_params(petrel):
    ids = []
    with smtplib.SMTP(petrel.host, petrel.port, timeout=30) as s:
        s.ehlo("c.example")
        for i in range(20):
            s.mail("alice@remote.example", ["RET=HDRS", "ENVID=env+2B" + str(i)])
            s.rcpt("bob@example.test", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob@example.test"])
            s.rcpt("carol@example.test", ["NOTIFY=NEVER"])
            code, text = s.data(make_message(subject=f"m{i}").as_bytes(policy=policy.SMTP))
            assert code == 250
            ids.append(queued_id([text.decode()]))
    assert len(set(ids)) == 20
    petrel.stop()
    msgs = {m["id"]: m for m in petrel.spool_messages()}
    assert set(msgs) == set(ids)
    m = msgs[ids[3]]
    assert m["dsn_ret"] == "HDRS" and m["dsn_envid"] == "env+3"
    assert m["recipients_detail"][0]["notify"] == ["SUCCESS", "FAILURE"]
    assert m["recipients_detail"][0]["orcpt"] == "rfc822;bob@example.test"
    assert m["recipients_detail"][1]["notify"] == ["NEVER"]


def test_smtputf8_message(petrel):
    with smtplib.SMTP(petrel.host, petrel.port, timeout=30) as s:
        s.ehlo("c.example")
        msg = make_message(to="jörg@example.test", body="Grüße\n")
        msg.replace_header("From", "ñandú@remote.example")
        s.send_message(msg, from_addr="ñandú@remote.example",
                       to_addrs=["jörg@example.test"])  # adds SMTPUTF8 itself
    petrel.stop()
    [m] = petrel.spool_messages()
    assert m["sender"] == "ñandú@remote.example"
    assert m["recipients"] == ["jörg@example.test"]
    assert m["smtputf8"] is True


def test_relay_denied_for_untrusted(workdir):
    from conftest import Petrel
    p = Petrel(workdir, trusted=()).start()
    try:
        with smtplib.SMTP(p.host, p.port, timeout=30) as s:
            s.ehlo("c.example")
            s.mail("a@remote.example")
            code, text = s.rcpt("victim@elsewhere.example")
            assert code == 554 and b"5.7.1" in text and b"Relay access denied" in text
            code, _ = s.rcpt("bob@example.test")
            assert code == 250
    finally:
        p.stop()


def test_pipelined_chunking_with_smtplib_bdat(petrel):
    """BDAT through a raw connection, pipelined (smtplib has no BDAT)."""
    c = petrel.connect()
    assert c.reply()[0] == 220
    c.cmd("EHLO c.example")
    body = b"Subject: chunked\r\n\r\nline one\r\n.\r\nline three\r\n"
    c.send(b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<bob@example.test>\r\n"
           + b"BDAT 10\r\n" + body[:10] + b"BDAT %d LAST\r\n" % (len(body) - 10) + body[10:])
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    code, lines = c.reply()
    assert code == 250, lines
    qid = queued_id(lines)
    c.cmd("QUIT")
    petrel.stop()
    assert petrel.spool_content(qid).endswith(body)


def test_bare_lf_is_refused_and_the_session_goes_on(petrel):
    """smtplib.data() with bytes sends them as they are: here with bare LF
    line ends, which petrel refuses (README: bare CR/LF policy)."""
    with smtplib.SMTP(petrel.host, petrel.port, timeout=30) as s:
        s.ehlo("c.example")
        s.mail("a@remote.example")
        s.rcpt("bob@example.test")
        code, text = s.data(b"Subject: lf\n\nbare\nlines\n")
        assert code == 550 and b"5.5.2" in text
        assert s.noop()[0] == 250
        s.mail("a@remote.example")
        s.rcpt("bob@example.test")
        code, _ = s.data(b"Subject: crlf\r\n\r\nfine\r\n")
        assert code == 250
    petrel.stop()
    assert len(petrel.spool_ids()) == 1
