"""Pipelining abuse (issue 5): a client that talks before the greeting,
sends message text before the 354, or sends more text after BDAT LAST than
the chunk size said. The issue asks for a 554 5.5.0-style synchronisation
error and nothing queued from the bad part."""
import smtplib
import socket
import time

import pytest

from conftest import Petrel, SmtpConn, server_option, session

SYNC = "554 5.5.0"
MAIL = b"MAIL FROM:<a@remote.example>\r\nRCPT TO:<b@example.test>\r\n"


def drain(c, limit=20, timeout=1.5):
    """Replies until the server closes or is quiet for `timeout` (bounded).
    Returns (replies, closed)."""
    c.sock.settimeout(timeout)
    out = []
    for _ in range(limit):
        try:
            out.append(c.reply())
        except EOFError:
            return out, True
        except (socket.timeout, TimeoutError):
            return out, False
        except OSError:
            return out, True
    return out, False


def stop_and_count(p):
    p.stop()
    return p.spool_messages()


def test_talking_before_the_greeting(workdir, row):
    """With server.greet_pause set, petrel waits before its 220; a client
    that talks first gets 554 5.5.0 and nothing it sent is read as a
    command. (Without a pause the check only sees input that came before
    petrel's accept loop ran, which is a race on loopback.)"""
    p = server_option(Petrel(workdir), 'greet_pause = "1s"').start()
    s = socket.create_connection((p.host, p.port), timeout=30)
    c = SmtpConn(s)
    # Everything in one write, before petrel has had a chance to greet.
    c.send(b"EHLO early.example\r\n" + MAIL + b"DATA\r\n")
    time.sleep(0.3)      # give a blind sender's text time to arrive after DATA
    c.send(b"Subject: early\r\n\r\nsent before the greeting\r\n.\r\n")
    replies, closed = drain(c)
    c.close()
    msgs = stop_and_count(p)
    codes = [r[0] for r in replies]
    sync = [r for r in replies if r[1][0].startswith(SYNC)]
    row("2 pipelining", "EHLO/MAIL/RCPT/DATA + text sent before the 220 greeting "
        "(greet_pause 1s)",
        f"replies {codes}; sync error {'yes' if sync else 'no'}; "
        f"closed {'yes' if closed else 'no'}; queued {len(msgs)}")
    assert sync, f"no {SYNC} for commands sent before the greeting: {codes}"
    assert codes == [554] and closed, replies
    assert msgs == []
    assert b"improper pipelining before the greeting" in p.read_log()


def test_patient_client_is_greeted_after_the_pause(workdir):
    """The pause costs a patient client nothing but the wait."""
    p = server_option(Petrel(workdir), 'greet_pause = "1s"').start()
    with smtplib.SMTP(p.host, p.port, timeout=30) as s:
        s.sendmail("a@remote.example", ["b@example.test"], b"Subject: ok\r\n\r\nhi\r\n")
    assert len(stop_and_count(p)) == 1


def test_text_before_354(workdir, row):
    p = Petrel(workdir).start()
    c = session(p)
    c.send(MAIL + b"DATA\r\nSubject: blind\r\n\r\nsent before 354\r\n.\r\n"
           + MAIL + b"DATA\r\n")
    replies, closed = drain(c)
    c.close()
    log = p.read_log()
    msgs = stop_and_count(p)
    codes = [r[0] for r in replies]
    row("2 pipelining", "message text in the same write as DATA (before 354)",
        f"replies {codes}; closed {'yes' if closed else 'no'}; queued {len(msgs)}")
    assert codes == [250, 250, 554], replies
    assert replies[-1][1][0].startswith(SYNC + " "), replies[-1]
    assert closed
    assert msgs == []
    assert b"improper pipelining after DATA" in log


def test_transaction_smuggled_after_bdat_last(workdir, row):
    """BDAT 20 LAST with 20 octets, then MAIL/RCPT/DATA and text in the same
    write: the chunk is one message; the DATA in the trailing part meets the
    before-354 rule, so nothing of it is queued."""
    p = Petrel(workdir).start()
    c = session(p)
    body = b"Subject: b\r\n\r\nhi\r\n"
    c.send(MAIL + b"BDAT %d LAST\r\n" % len(body) + body
           + b"MAIL FROM:<evil@remote.example>\r\nRCPT TO:<c@example.test>\r\n"
           + b"DATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n")
    replies, closed = drain(c)
    c.close()
    msgs = stop_and_count(p)
    codes = [r[0] for r in replies]
    row("2 pipelining", "BDAT LAST, then MAIL/RCPT/DATA + text in the same write",
        f"replies {codes}; closed {'yes' if closed else 'no'}; queued {len(msgs)} "
        f"(the BDAT message)")
    assert len(msgs) == 1 and msgs[0]["recipients"] == ["b@example.test"], msgs
    assert replies[-1][1][0].startswith(SYNC), replies
    assert closed


def test_text_past_bdat_last_queues_nothing_more(workdir, row):
    """BDAT 10 LAST followed by more message text than 10 octets: the rest
    is read as commands. What matters most: nothing of it is queued and no
    line of it is accepted as a command."""
    p = Petrel(workdir).start()
    c = session(p)
    body = b"Subject: b\r\n\r\nline one\r\nline two\r\n"
    c.send(MAIL + b"BDAT 10 LAST\r\n" + body)
    replies, closed = drain(c)
    c.close()
    msgs = stop_and_count(p)
    codes = [r[0] for r in replies]
    row("2 pipelining", "BDAT 10 LAST followed by more text than 10 octets",
        f"replies {codes}; queued {len(msgs)} (10 octets); bad part queued 0")
    assert len(msgs) == 1
    assert codes[:3] == [250, 250, 250]
    assert all(c >= 500 for c in codes[3:]), codes


def test_text_past_bdat_last_is_a_sync_error(workdir, row):
    p = Petrel(workdir).start()
    c = session(p)
    body = b"Subject: b\r\n\r\nline one\r\nline two\r\n"
    c.send(MAIL + b"BDAT 10 LAST\r\n" + body)
    replies, closed = drain(c)
    c.close()
    stop_and_count(p)
    codes = [r[0] for r in replies]
    row("2 pipelining", "BDAT 10 LAST + more text: a sync error wanted",
        f"replies {[' '.join(r[1][0].split()[:2]) for r in replies[3:]]}; "
        f"sync error {'yes' if any(r[1][0].startswith(SYNC) for r in replies) else 'no'}")
    assert any(r[1][0].startswith(SYNC) for r in replies[3:]), codes
