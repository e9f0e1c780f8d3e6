"""Tests of the scripted SMTP peer itself, with smtplib and raw sockets.

Each scenario must behave as specified and count right, or the delivery
tests that rely on it prove nothing. Waits are bounded; no test asserts on
timing.
"""
import hashlib
import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time

import pytest

from peer import Peer, PeerProcess, SCENARIOS, read_state

HERE = os.path.dirname(os.path.abspath(__file__))


def message(subject="hello", msgid="<m1@example.test>", body="Hi.\r\n"):
    return (f"From: alice@example.test\r\nTo: bob@example.net\r\n"
            f"Subject: {subject}\r\nMessage-ID: {msgid}\r\n\r\n{body}").encode()


class Raw:
    """A raw client: exact bytes out, whole replies in."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode()

    def reply(self):
        lines = [self.line()]
        while lines[-1][3:4] == "-":
            lines.append(self.line())
        return lines

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.reply()

    def closed(self):
        try:
            while True:
                chunk = self.sock.recv(4096)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


@pytest.fixture
def state(tmp_path):
    return str(tmp_path / "peer.json")


def send(peer, rcpts, msg=None, sender="alice@example.test", ehlo=True):
    """One message through smtplib; returns (refused, data_reply)."""
    with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
        if ehlo:
            s.ehlo("client.example")
        else:
            s.helo("client.example")
        code, _ = s.mail(sender)
        assert code == 250
        refused = {}
        for r in rcpts:
            code, text = s.rcpt(r)
            if code != 250:
                refused[r] = (code, text.decode())
        if len(refused) == len(rcpts):
            s.rset()
            return refused, None
        reply = s.data(msg or message())
        return refused, reply


# ---- accept ----------------------------------------------------------------

def test_accept_advertises_extensions_and_counts(state):
    with Peer("accept", state_path=state) as peer:
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
            code, _ = s.ehlo("client.example")
            assert code == 250
            for ext in ("pipelining", "size", "8bitmime", "smtputf8", "dsn",
                        "enhancedstatuscodes"):
                assert s.has_extn(ext), ext
            assert not s.has_extn("chunking")
            assert s.esmtp_features["size"] == "52428800"
        m1 = message(msgid="<one@example.test>", body=".leading dot\r\nbody\r\n")
        refused, reply = send(peer, ["bob@example.net", "carol@example.net"], m1)
        assert refused == {} and reply[0] == 250
        assert reply[1].startswith(b"2.0.0 Ok: queued as P")
        send(peer, ["bob@example.net"], message(msgid="<two@example.test>"))
        st = peer.stats()
    assert st["transaction_count"] == 2 and st["delivered_transactions"] == 2
    assert st["delivered"] == {"bob@example.net": 2, "carol@example.net": 1}
    assert st["received"] == st["delivered"]
    t1, t2 = st["transactions"]
    assert t1["rcpts_accepted"] == ["bob@example.net", "carol@example.net"]
    assert t1["mail_from"] == "alice@example.test"
    assert t1["message_id"] == "<one@example.test>"
    assert t2["message_id"] == "<two@example.test>"
    assert t1["outcome"] == "delivered" and t1["method"] == "DATA"
    # Un-dot-stuffed content, and the raw bytes as received.
    assert t1["sha256"] == hashlib.sha256(m1).hexdigest()
    with open(t1["content_file"], "rb") as f:
        assert f.read() == m1
    with open(t1["raw_file"], "rb") as f:
        assert f.read() == m1.replace(b"\r\n.leading", b"\r\n..leading") + b".\r\n"
    assert st["violations"] == [] and st["errors"] == []
    # The file holds the final state.
    final = read_state(state)
    assert final["running"] is False
    assert final["delivered"] == st["delivered"]
    assert final["transactions"][0]["sha256"] == t1["sha256"]
    assert [c["closed_by"] for c in final["connections"]] == ["quit"] * 3


def test_state_file_is_written_after_each_transaction(state):
    with Peer("accept", state_path=state) as peer:
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
            s.ehlo("c.example")
            s.sendmail("a@example.test", ["bob@example.net"], message())
            # Still connected: the transaction's end already wrote the file.
            st = read_state(state)
            assert st["running"] is True
            assert st["transaction_count"] == 1
            assert st["delivered"] == {"bob@example.net": 1}
            s.sendmail("a@example.test", ["bob@example.net"], message())
            assert read_state(state)["delivered"] == {"bob@example.net": 2}
    assert not os.path.exists(state + ".tmp")


def test_records_commands_params_and_dialog(state):
    with Peer("accept", state_path=state) as peer:
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
            s.ehlo("c.example")
            s.mail("a@example.test", ["SIZE=100", "BODY=8BITMIME", "RET=HDRS", "ENVID=e1"])
            s.rcpt("bob@example.net", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;bob@example.net"])
            s.data(message())
        st = peer.stats()
    t = st["transactions"][0]
    assert t["mail_params"] == ["SIZE=100", "BODY=8BITMIME", "RET=HDRS", "ENVID=e1"]
    assert t["rcpt_params"]["bob@example.net"] == ["NOTIFY=SUCCESS,FAILURE",
                                                   "ORCPT=rfc822;bob@example.net"]
    c = st["connections"][0]
    assert c["helo"] == "c.example" and c["esmtp"] is True
    assert c["commands"][0] == "ehlo c.example"
    assert c["commands"][-1].upper() == "QUIT"
    assert "S: 221 2.0.0 Bye" in c["dialog"]
    assert st["violations"] == []


def test_dot_stuffing_empty_lines_and_pipelined_quit(state):
    with Peer("accept", state_path=state) as peer:
        c = Raw(peer.port)
        assert c.reply()[0].startswith("220 ")
        c.cmd("EHLO c.example")
        # MAIL, RCPT and DATA in one group (PIPELINING is advertised).
        c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
        assert c.reply() == ["250 2.1.0 Ok"]
        assert c.reply() == ["250 2.1.5 Ok"]
        assert c.reply()[0].startswith("354 ")
        # The end of data and QUIT in one write.
        c.send("Subject: x\r\n\r\n..\r\n...two\r\nlast\r\n.\r\nQUIT\r\n")
        assert c.reply()[0].startswith("250 2.0.0")
        assert c.reply() == ["221 2.0.0 Bye"]
        assert c.closed()
        st = peer.stats()
    assert peer.messages() == [b"Subject: x\r\n\r\n.\r\n..two\r\nlast\r\n"]
    assert st["violations"] == []


def test_empty_message_and_no_valid_recipients(state):
    with Peer("reject_some", state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.cmd("MAIL FROM:<>")
        assert c.cmd("RCPT TO:<nobody@example.net>")[0].startswith("550 5.1.1")
        assert c.cmd("DATA") == ["554 5.5.1 Error: no valid recipients"]
        assert c.cmd("RSET") == ["250 2.0.0 Ok"]
        c.cmd("MAIL FROM:<>")
        c.cmd("RCPT TO:<bob@example.net>")
        assert c.cmd("DATA")[0].startswith("354")
        assert c.cmd(".")[0].startswith("250 ")
        c.cmd("QUIT")
        st = peer.stats()
    assert [t["outcome"] for t in st["transactions"]] == ["aborted", "delivered"]
    assert st["transactions"][0]["mail_from"] == ""
    assert st["transactions"][1]["size"] == 0
    assert st["delivered"] == {"bob@example.net": 1}


def test_chunking_receives_bdat(state):
    with Peer("accept", chunking=True, state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        assert "250-CHUNKING" in c.cmd("EHLO c.example") or \
            "250 CHUNKING" in c.cmd("EHLO c.example")
        c.cmd("MAIL FROM:<a@example.test>")
        c.cmd("RCPT TO:<b@example.net>")
        part1, part2 = b"Subject: b\r\n\r\n.no stuffing", b" here\r\n"
        # Two chunks pipelined (allowed for BDAT, RFC 3030).
        c.send(b"BDAT %d\r\n" % len(part1) + part1 +
               b"BDAT %d LAST\r\n" % len(part2) + part2)
        assert c.reply() == [f"250 2.0.0 {len(part1)} octets received"]
        assert c.reply()[0].startswith("250 2.0.0 Ok: queued as")
        c.cmd("QUIT")
        st = peer.stats()
    t = st["transactions"][0]
    assert t["method"] == "BDAT" and t["bdat_chunks"] == [len(part1), len(part2)]
    assert peer.messages() == [part1 + part2]
    assert st["delivered"] == {"b@example.net": 1}
    assert st["violations"] == []


def test_bdat_without_chunking_is_a_violation(state):
    with Peer("accept", state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.cmd("MAIL FROM:<a@example.test>")
        c.cmd("RCPT TO:<b@example.net>")
        c.send(b"BDAT 3 LAST\r\nabc")
        assert c.reply()[0].startswith("502 ")
        assert c.cmd("NOOP") == ["250 2.0.0 Ok"]   # still in step
        st = peer.stats()
    assert [v["kind"] for v in st["violations"]] == ["unadvertised_bdat"]
    assert st["delivered"] == {}


# ---- recipient limits (seeds 000, 001, 004) ---------------------------------

@pytest.mark.parametrize("code,expected", [
    (452, "452 4.5.3 Too many recipients"),
    (552, "552 5.5.3 Too many recipients"),
    (522, "522 Too many recipients"),
])
def test_rcpt_limit(state, code, expected):
    rcpts = [f"r{i}@example.net" for i in range(5)]
    with Peer("rcpt_limit", limit=3, code=code, state_path=state) as peer:
        refused, reply = send(peer, rcpts)
        assert reply[0] == 250
        # A new transaction starts from zero again.
        refused2, _ = send(peer, rcpts[3:])
        st = peer.stats()
    assert refused == {r: (code, expected[4:]) for r in rcpts[3:]}
    assert refused2 == {}
    assert st["transactions"][0]["rcpts_accepted"] == rcpts[:3]
    assert st["transactions"][0]["limit_refusals"] == 2
    assert st["limit_refusals"] == 2
    assert st["delivered"] == {r: 1 for r in rcpts}
    assert st["rcpt_attempts"] == {r: (2 if r in rcpts[3:] else 1) for r in rcpts}


def test_rcpt_limit_default_is_100(state):
    rcpts = [f"r{i}@example.net" for i in range(101)]
    with Peer("rcpt_limit", state_path=state) as peer:
        refused, _ = send(peer, rcpts)
        st = peer.stats()
    assert list(refused) == [rcpts[100]]
    assert len(st["transactions"][0]["rcpts_accepted"]) == 100


def test_limits_rcptmax(state):
    rcpts = [f"r{i}@example.net" for i in range(11)]
    with Peer("limits_rcptmax", state_path=state) as peer:
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
            s.ehlo("c.example")
            assert s.esmtp_features["limits"] == "RCPTMAX=10"
        send(peer, rcpts[:10])
        assert peer.stats()["violations"] == []
        refused, _ = send(peer, rcpts)
        st = peer.stats()
    assert refused == {rcpts[10]: (452, "4.5.3 Too many recipients")}
    assert [v["kind"] for v in st["violations"]] == ["rcptmax_exceeded"]
    assert st["delivered"][rcpts[0]] == 2 and rcpts[10] not in st["delivered"]


# ---- reply shapes (seed 002) ---------------------------------------------------

def test_multiline_354_with_pause(state):
    with Peer("multiline_354", pause=0.3, state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.cmd("MAIL FROM:<a@example.test>")
        c.cmd("RCPT TO:<b@example.net>")
        c.send("DATA\r\n")
        assert c.line() == "354-Line 1"
        assert c.line() == "354 Send message"
        c.send("Subject: x\r\n\r\nhi\r\n.\r\n")
        assert c.reply()[0].startswith("250 ")
        c.close()
        # smtplib reads the multiline 354 whole.
        refused, reply = send(peer, ["c@example.net"])
        assert reply[0] == 250
        st = peer.stats()
    assert st["violations"] == []
    assert st["delivered"] == {"b@example.net": 1, "c@example.net": 1}


def test_multiline_354_catches_a_client_that_does_not_wait(state):
    with Peer("multiline_354", pause=0.5, state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.cmd("MAIL FROM:<a@example.test>")
        c.cmd("RCPT TO:<b@example.net>")
        c.send("DATA\r\n")
        assert c.line() == "354-Line 1"
        c.send("Subject: x\r\n\r\nhi\r\n.\r\n")    # the seed 002 mistake
        assert c.line() == "354 Send message"
        assert c.reply()[0].startswith("250 ")
        st = peer.stats()
    assert [v["kind"] for v in st["violations"]] == ["content_before_354"]


def test_split_final_reply_one_byte_at_a_time(state):
    with Peer("split_final", byte_delay=0.005, state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.cmd("MAIL FROM:<a@example.test>")
        c.cmd("RCPT TO:<b@example.net>")
        c.cmd("DATA")
        c.send("Subject: x\r\n\r\nhi\r\n.\r\n")
        got = b""
        while not got.endswith(b"\r\n250 as P000001\r\n"):
            chunk = c.sock.recv(100)
            assert chunk, got
            got += chunk
        assert got == b"250-Ok\r\n250-queued\r\n250 as P000001\r\n"
        c.close()
        refused, reply = send(peer, ["c@example.net"])
        assert reply == (250, b"Ok\nqueued\nas P000002")
        st = peer.stats()
    assert st["delivered"] == {"b@example.net": 1, "c@example.net": 1}
    assert st["violations"] == []


def test_split_all_replies(state):
    with Peer("accept", byte_delay=0.001, split_all=True, state_path=state) as peer:
        refused, reply = send(peer, ["b@example.net"])
        assert reply[0] == 250
        assert peer.stats()["delivered"] == {"b@example.net": 1}


# ---- faults --------------------------------------------------------------------

def test_drop_421_at_the_nth_rcpt_then_normal(state):
    with Peer("drop_421_mid", nth=2, state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.cmd("MAIL FROM:<a@example.test>")
        assert c.cmd("RCPT TO:<b@example.net>") == ["250 2.1.5 Ok"]
        assert c.cmd("RCPT TO:<c@example.net>") == [
            "421 4.3.0 Service not available, closing transmission channel"]
        assert c.closed()
        # times=1: the retry is accepted.
        refused, reply = send(peer, ["b@example.net", "c@example.net"])
        assert refused == {} and reply[0] == 250
        st = peer.stats()
    assert [t["outcome"] for t in st["transactions"]] == ["dropped", "delivered"]
    assert st["faults_fired"] == 1
    assert st["delivered"] == {"b@example.net": 1, "c@example.net": 1}
    assert st["connections"][0]["closed_by"] == "fault_421"


def test_drop_421_at_data(state):
    with Peer("drop_421_mid", at="data", state_path=state) as peer:
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
            s.ehlo("c.example")
            s.mail("a@example.test")
            s.rcpt("b@example.net")
            with pytest.raises(smtplib.SMTPDataError) as e:
                s.data(message())
            assert e.value.smtp_code == 421
        send(peer, ["b@example.net"])
        st = peer.stats()
    assert [t["outcome"] for t in st["transactions"]] == ["dropped", "delivered"]
    assert st["delivered"] == {"b@example.net": 1}
    assert st["received"] == {"b@example.net": 1}


def test_close_after_dot(state):
    with Peer("close_after_dot", state_path=state) as peer:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            send(peer, ["b@example.net", "c@example.net"])
        st = peer.stats()
        assert st["transactions"][0]["outcome"] == "no_reply"
        assert st["delivered"] == {}
        assert st["received"] == {"b@example.net": 1, "c@example.net": 1}
        refused, reply = send(peer, ["b@example.net", "c@example.net"])
        assert reply[0] == 250
        st = peer.stats()
    assert st["delivered"] == {"b@example.net": 1, "c@example.net": 1}
    assert st["received"] == {"b@example.net": 2, "c@example.net": 2}


def test_close_after_dot_nth_and_times(state):
    with Peer("close_after_dot", nth=2, times=2, state_path=state) as peer:
        outcomes = []
        for _ in range(4):
            try:
                send(peer, ["b@example.net"])
                outcomes.append("ok")
            except smtplib.SMTPServerDisconnected:
                outcomes.append("closed")
    assert outcomes == ["ok", "closed", "closed", "ok"]


def test_greylist(state):
    with Peer("greylist", state_path=state) as peer:
        refused, _ = send(peer, ["b@example.net", "c@example.net"])
        assert refused == {r: (451, "4.7.1 Greylisted, please try again later")
                           for r in ["b@example.net", "c@example.net"]}
        refused, reply = send(peer, ["b@example.net", "c@example.net", "d@example.net"])
        assert refused == {"d@example.net": (451, "4.7.1 Greylisted, please try again later")}
        st = peer.stats()
    assert st["delivered"] == {"b@example.net": 1, "c@example.net": 1}
    assert st["rcpt_attempts"] == {"b@example.net": 2, "c@example.net": 2, "d@example.net": 1}


def test_reject_some_by_local_part_and_regex(state):
    with Peer("reject_some", reject=["carol", "Dave"], reject_regex=r"^x-.*@bad\.",
              state_path=state) as peer:
        rcpts = ["bob@example.net", "carol@example.net", "dave@example.net",
                 "x-1@bad.example", "x-1@example.net"]
        refused, reply = send(peer, rcpts)
        st = peer.stats()
    assert refused == {
        r: (550, f"5.1.1 <{r}>: Recipient address rejected: User unknown")
        for r in ["carol@example.net", "dave@example.net", "x-1@bad.example"]}
    assert st["delivered"] == {"bob@example.net": 1, "x-1@example.net": 1}


def test_no_ehlo_then_helo(state):
    with Peer("no_ehlo", state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        assert c.cmd("EHLO c.example") == ["500 5.5.1 Command unrecognized"]
        assert c.cmd("HELO c.example") == ["250 peer.example.net"]
        # No extensions: a parameter is refused and recorded.
        assert c.cmd("MAIL FROM:<a@example.test> SIZE=10")[0].startswith("555 ")
        assert c.cmd("MAIL FROM:<a@example.test>") == ["250 Ok"]   # no enhanced codes
        c.close()
        # smtplib falls back to HELO by itself.
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
            assert s.sendmail("a@example.test", ["b@example.net"], message()) == {}
            assert not s.does_esmtp
        st = peer.stats()
    assert [v["kind"] for v in st["violations"]] == ["esmtp_param_without_ehlo"]
    assert st["delivered"] == {"b@example.net": 1}
    assert st["connections"][1]["esmtp"] is False


def test_slow_accept(state):
    with Peer("slow_accept", delay=0.3, state_path=state) as peer:
        refused, reply = send(peer, ["b@example.net"])
        assert reply[0] == 250
        assert peer.stats()["delivered"] == {"b@example.net": 1}


def test_no_pipelining_records_a_violation(state):
    with Peer("no_pipelining", state_path=state) as peer:
        with smtplib.SMTP("127.0.0.1", peer.port, timeout=10) as s:
            s.ehlo("c.example")
            assert not s.has_extn("pipelining")
            s.sendmail("a@example.test", ["b@example.net", "c@example.net"], message())
        assert peer.stats()["violations"] == []     # smtplib waits for each reply
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.net>\r\n")
        assert c.reply() == ["250 2.1.0 Ok"]
        assert c.reply() == ["250 2.1.5 Ok"]      # answered in order all the same
        st = peer.stats()
    v = st["violations"]
    assert [x["kind"] for x in v] == ["unsynchronized"]
    assert "RCPT TO:<b@example.net>" in v[0]["detail"]


def test_no_pipelining_strict_closes(state):
    with Peer("no_pipelining", strict_sync=True, state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.net>\r\n")
        assert c.reply() == ["554 5.5.0 SMTP synchronization error"]
        assert c.closed()


def test_pipelining_allowed_when_advertised(state):
    with Peer("accept", sync_wait=0.01, state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.send("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.net>\r\n"
               "RCPT TO:<c@example.net>\r\nDATA\r\n")
        for _ in range(3):
            assert c.reply()[0].startswith("250")
        assert c.reply()[0].startswith("354")
        c.send("x\r\n.\r\n")
        assert c.reply()[0].startswith("250")
        # Not allowed even with PIPELINING: a command after EHLO in the same group.
        c.send("EHLO c.example\r\nNOOP\r\n")
        c.reply()
        c.reply()
        st = peer.stats()
    assert [x["kind"] for x in st["violations"]] == ["unsynchronized"]


def test_early_talker(state):
    with Peer("accept", sync_wait=0.2, state_path=state) as peer:
        s = socket.create_connection(("127.0.0.1", peer.port), timeout=10)
        s.sendall(b"EHLO c.example\r\n")
        s.recv(100)
        s.close()
        peer.wait_for(lambda st: st["violations"], 10, "a violation")
        assert peer.stats()["violations"][0]["kind"] == "early_talker"


def test_tempfail_then_accept(state):
    with Peer("tempfail_data", state_path=state) as peer:
        _, reply = send(peer, ["b@example.net"])
        assert reply == (451, b"4.3.0 Temporary failure, try again later")
        send(peer, ["b@example.net"])
        st = peer.stats()
    assert [t["outcome"] for t in st["transactions"]] == ["rejected", "delivered"]
    assert st["delivered"] == {"b@example.net": 1}


def test_reject_data_always(state):
    with Peer("reject_data", state_path=state) as peer:
        for _ in range(2):
            _, reply = send(peer, ["b@example.net"])
            assert reply == (554, b"5.7.1 Message content rejected")
        st = peer.stats()
    assert st["delivered"] == {} and st["received"] == {"b@example.net": 2}


def test_greeting_421_once(state):
    with Peer("greeting_421", state_path=state) as peer:
        with pytest.raises(smtplib.SMTPConnectError) as e:
            smtplib.SMTP("127.0.0.1", peer.port, timeout=10)
        assert e.value.smtp_code == 421
        send(peer, ["b@example.net"])
        assert peer.stats()["delivered"] == {"b@example.net": 1}


def test_garbage_reply(state):
    with Peer("garbage_reply", state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.cmd("MAIL FROM:<a@example.test>")
        assert c.cmd("RCPT TO:<b@example.net>") == ["this is not an SMTP reply"]
        assert c.closed()
        st = peer.stats()
    assert st["transactions"][0]["outcome"] == "dropped"


# ---- limits, bounds, safety --------------------------------------------------------

def test_long_command_and_reply_lines_fit(state):
    with Peer("reject_some", reject_regex="^z", state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        assert c.cmd("NOOP " + "x" * 600) == ["500 5.5.2 Error: line too long"]
        assert c.cmd("NOOP") == ["250 2.0.0 Ok"]     # still in step
        c.cmd("MAIL FROM:<a@example.test>")
        addr = "z" * 64 + "@" + ".".join(["d" * 60] * 7) + ".net"
        r = c.cmd(f"RCPT TO:<{addr}>")
        assert r[0].startswith("550 5.1.1 <zzz")
        assert len(r[0]) + 2 <= 512
        st = peer.stats()
    assert [v["kind"] for v in st["violations"]] == ["long_command"]


def test_params_of_unadvertised_extensions_are_refused(state):
    with Peer("accept", dsn=False, smtputf8=False, state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        assert c.cmd("MAIL FROM:<a@example.test> SMTPUTF8")[0].startswith("555 5.5.4")
        assert c.cmd("MAIL FROM:<a@example.test> RET=FULL")[0].startswith("555 5.5.4")
        assert c.cmd("MAIL FROM:<a@example.test> SIZE=99999999999")[0].startswith("552 5.3.4")
        assert c.cmd("MAIL FROM:<a@example.test>") == ["250 2.1.0 Ok"]
        assert c.cmd("RCPT TO:<b@example.net> NOTIFY=NEVER")[0].startswith("555 5.5.4")
        st = peer.stats()
    assert [v["kind"] for v in st["violations"]] == ["unadvertised_param"] * 3


def test_quoted_local_part_is_recorded_as_sent(state):
    with Peer("accept", state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        c.cmd("EHLO c.example")
        c.cmd("MAIL FROM:<a@example.test>")
        assert c.cmd('RCPT TO:<"odd >local"@example.net>') == ["250 2.1.5 Ok"]
        c.cmd("DATA")
        c.cmd(".")
        st = peer.stats()
    assert st["delivered"] == {'"odd >local"@example.net': 1}


def test_idle_timeout(state):
    with Peer("accept", idle_timeout=0.5, state_path=state) as peer:
        c = Raw(peer.port)
        c.reply()
        assert c.reply() == ["421 4.4.2 Idle timeout, closing connection"]
        assert c.closed()
        peer.wait_for(lambda st: st["connections"][0]["closed_by"], 10, "close")
        assert peer.stats()["connections"][0]["closed_by"] == "timeout"


def test_concurrent_connections_count_right(state):
    with Peer("accept", state_path=state) as peer:
        errors = []

        def client(i):
            try:
                for j in range(3):
                    send(peer, [f"u{i}@example.net", "all@example.net"],
                         message(msgid=f"<{i}.{j}@example.test>"))
            except Exception as e:  # noqa: BLE001 -- reported below
                errors.append(e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        st = peer.stats()
    assert st["transaction_count"] == 24 and st["connection_count"] == 24
    assert st["delivered"]["all@example.net"] == 24
    assert all(st["delivered"][f"u{i}@example.net"] == 3 for i in range(8))
    assert len({t["message_id"] for t in st["transactions"]}) == 24
    assert read_state(state)["delivered"] == st["delivered"]


def test_stop_interrupts_a_pause(state):
    peer = Peer("multiline_354", pause=60, state_path=state).start()
    c = Raw(peer.port)
    c.reply()
    c.cmd("EHLO c.example")
    c.cmd("MAIL FROM:<a@example.test>")
    c.cmd("RCPT TO:<b@example.net>")
    c.send("DATA\r\n")
    assert c.line() == "354-Line 1"
    stopper = threading.Thread(target=peer.stop)
    stopper.start()
    stopper.join(30)
    assert not stopper.is_alive()
    assert c.closed()
    assert read_state(state)["running"] is False


def test_loopback_only_and_bad_options():
    with pytest.raises(ValueError):
        Peer("accept", host="0.0.0.0")
    with pytest.raises(ValueError):
        Peer("accept", host="192.0.2.1")
    with pytest.raises(ValueError):
        Peer("no_such_scenario")
    with pytest.raises(ValueError):
        Peer("accept", no_such_option=1)
    with pytest.raises(ValueError):
        Peer("drop_421_mid", at="nowhere")


def _has_ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no ::1")
def test_ipv6_loopback(state):
    with Peer("accept", host="::1", state_path=state) as peer:
        with smtplib.SMTP("::1", peer.port, timeout=10) as s:
            assert s.sendmail("a@example.test", ["b@example.net"], message()) == {}
        assert peer.stats()["connections"][0]["client"].startswith("::1:")


def test_every_scenario_starts_and_serves_a_greeting(state):
    for name in SCENARIOS:
        with Peer(name, state_path=state) as peer:
            c = Raw(peer.port)
            first = c.reply()[0]
            assert first.startswith("220 ") or (name == "greeting_421" and first.startswith("421"))
            c.close()


# ---- the command line ------------------------------------------------------------------

def test_cli_process(state):
    p = PeerProcess("rcpt_limit", state_path=state, limit=2, code=522,
                    reject=["nobody"], lines_354=["354-a", "354 b"])
    with p:
        assert p.port > 0
        refused, reply = send(p, ["a@example.net", "nobody@example.net",
                                  "b@example.net", "c@example.net"])
        assert reply[0] == 250
        assert refused == {"nobody@example.net": (550, "5.1.1 <nobody@example.net>: "
                                                       "Recipient address rejected: User unknown"),
                           "c@example.net": (522, "Too many recipients")}
        st = p.wait_for(lambda s: s["transaction_count"] == 1, 10, "one transaction")
        assert st["running"] is True and st["options"]["lines_354"] == ["354-a", "354 b"]
        assert st["delivered"] == {"a@example.net": 1, "b@example.net": 1}
        rc = p.stop()
    assert rc == 0
    final = read_state(state)
    assert final["running"] is False and final["scenario"] == "rcpt_limit"


def test_cli_prints_port_first_and_exits_on_sigterm(state):
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "peer.py"), "--port", "0",
                             "--script", "no_ehlo", "--state", state],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = proc.stdout.readline().decode()
        assert first.startswith("port ")
        port = int(first.split()[1])
        c = Raw(port)
        assert c.reply()[0].startswith("220 ")
        c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()
        proc.stderr.close()
    assert read_state(state)["running"] is False


def test_cli_max_seconds_cap(state):
    proc = subprocess.run([sys.executable, os.path.join(HERE, "peer.py"), "--port", "0",
                           "--state", state, "--max-seconds", "1"],
                          capture_output=True, timeout=60)
    assert proc.returncode == 0
    assert proc.stdout.decode().startswith("port ")
    st = read_state(state)
    assert st["running"] is False
    assert any("max-seconds" in e for e in st["errors"])


def test_cli_help_lists_scenarios():
    out = subprocess.run([sys.executable, os.path.join(HERE, "peer.py"), "--help"],
                         capture_output=True, text=True, timeout=60).stdout
    for name in SCENARIOS:
        assert name in out
    for flag in ("--limit", "--code", "--pause", "--byte-delay", "--at", "--nth",
                 "--times", "--reject", "--reject-regex", "--greylist", "--delay",
                 "--rcptmax", "--chunking", "--max-seconds", "--state"):
        assert flag in out
