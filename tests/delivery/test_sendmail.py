"""`petrel sendmail [-t] [-i] [-f SENDER] [RCPT...]`: the message on stdin,
handed to the running server over the admin socket; exit 0 only once it is
queued. Local recipients (example.test) land in mail/example.test/USER/
(Maildir files have LF line ends, docs/decisions.md); example.net is relayed
to the scripted peer, which shows what went over the wire (CRLF only).
"""
import email
import os
import subprocess
from email import policy

import pytest

from conftest import (Petrel, _integration, maildir_files, relay_config,
                      wait_delivered, wait_for, wait_maildir)

PETREL = _integration.PETREL


@pytest.fixture
def setup(workdir, start_peer):
    peer = start_peer("accept")
    petrel = Petrel(workdir, extra_config=relay_config({"example.net": peer})).start()
    return petrel, peer


def sendmail(petrel, *args, stdin=b""):
    return subprocess.run([PETREL, "sendmail", "--config", petrel.config_path, *args],
                          input=stdin, capture_output=True, timeout=60)


def read_one(workdir, user, timeout=30):
    files = wait_maildir(workdir, user, 1, timeout)
    assert len(files) == 1, files
    with open(files[0], "rb") as f:
        return f.read()


def parse(raw):
    return email.message_from_bytes(raw, policy=policy.default)


def peer_transactions(peer):
    return [t for t in peer.stats()["transactions"] if t["outcome"] == "delivered"]


def test_explicit_recipients_lf_input(workdir, setup):
    petrel, peer = setup
    msg = (b"From: Alice <alice@example.test>\n"
           b"To: someone@elsewhere.example\n"
           b"Subject: explicit recipients\n"
           b"Message-ID: <explicit.1@example.test>\n"
           b"\n"
           b"line one\n"
           b"line two\n")
    r = sendmail(petrel, "-f", "alice@example.test", "bob@example.test",
                 "erin@example.net", stdin=msg)
    assert r.returncode == 0, r.stderr
    raw = read_one(workdir, "bob")
    # Only the recipients given: To: is not looked at without -t.
    assert not os.path.exists(os.path.join(workdir, "mail", "elsewhere.example"))
    assert b"\r" not in raw, "Maildir files have LF line ends"
    m = parse(raw)
    assert str(m["Return-Path"]).strip() == "<alice@example.test>"
    assert str(m["Subject"]) == "explicit recipients"
    assert m.get_content() == "line one\nline two\n"
    assert raw.startswith(b"Return-Path:") and b"Received:" in raw

    st = wait_delivered(peer, ["erin@example.net"], timeout=30)
    [t] = peer_transactions(peer)
    assert t["mail_from"] == "alice@example.test"
    assert t["rcpts_accepted"] == ["erin@example.net"]
    assert t["message_id"] == "<explicit.1@example.test>"
    assert not t["bare_lf"]
    with open(t["content_file"], "rb") as f:
        wire = f.read()
    assert wire.endswith(b"\r\nline one\r\nline two\r\n"), wire
    assert b"\n" not in wire.replace(b"\r\n", b""), "CRLF only on the wire"
    assert st["violations"] == []


@pytest.mark.parametrize("ending", ["lf", "crlf", "mixed", "no_final_newline"])
def test_line_endings_are_normalised(workdir, setup, ending):
    petrel, peer = setup
    lines = [b"From: alice@example.test", b"Subject: endings " + ending.encode(),
             b"", b"first", b"second", b"third"]
    if ending == "lf":
        msg = b"\n".join(lines) + b"\n"
    elif ending == "crlf":
        msg = b"\r\n".join(lines) + b"\r\n"
    elif ending == "mixed":
        msg = b"".join(l + (b"\r\n" if i % 2 else b"\n") for i, l in enumerate(lines))
    else:
        msg = b"\n".join(lines)
    r = sendmail(petrel, "-f", "alice@example.test", "bob@example.test",
                 "erin@example.net", stdin=msg)
    assert r.returncode == 0, r.stderr
    raw = read_one(workdir, "bob")
    assert b"\r" not in raw, raw
    assert raw.endswith(b"\n\nfirst\nsecond\nthird\n"), raw
    wait_delivered(peer, ["erin@example.net"], timeout=30)
    [t] = peer_transactions(peer)
    assert not t["bare_lf"]
    with open(t["content_file"], "rb") as f:
        wire = f.read()
    assert wire.endswith(b"\r\n\r\nfirst\r\nsecond\r\nthird\r\n"), wire
    assert b"\n" not in wire.replace(b"\r\n", b""), wire


def test_t_takes_recipients_from_to_cc_bcc_and_drops_bcc(workdir, setup):
    petrel, peer = setup
    msg = (b"From: alice@example.test\n"
           b"To: bob@example.test, erin@example.net\n"
           b"Cc: <carol@example.test>\n"
           b"Bcc: dave@example.test,\n"
           b"  frank@example.net\n"
           b"Subject: recipients from the header\n"
           b"\n"
           b"Bcc: this line is body text and stays\n")
    r = sendmail(petrel, "-t", "-f", "alice@example.test", stdin=msg)
    assert r.returncode == 0, r.stderr
    for user in ("bob", "carol", "dave"):
        raw = read_one(workdir, user)
        m = parse(raw)
        assert m["Bcc"] is None, f"Bcc: left in {user}'s copy"
        # Return-Path: and Delivered-To: are added at local delivery.
        header = b"\n".join(l for l in raw.split(b"\n\n", 1)[0].split(b"\n")
                            if not l.startswith((b"Return-Path:", b"Delivered-To:")))
        assert b"frank@" not in header and b"dave@" not in header, \
            "no trace of the Bcc recipients in the header"
        assert "bob@example.test" in str(m["To"]) and "carol@example.test" in str(m["Cc"])
        assert m.get_content() == "Bcc: this line is body text and stays\n"
        assert str(m["Return-Path"]).strip() == "<alice@example.test>"
    wait_delivered(peer, ["erin@example.net", "frank@example.net"], timeout=30)
    for t in peer_transactions(peer):
        with open(t["content_file"], "rb") as f:
            wire = f.read()
        head = wire.split(b"\r\n\r\n", 1)[0]
        assert b"\r\nBcc:" not in head and not head.startswith(b"Bcc:"), head
        assert b"frank@" not in head and b"dave@" not in head, head
    got = sorted(r for t in peer_transactions(peer) for r in t["rcpts_accepted"])
    assert got == ["erin@example.net", "frank@example.net"]
    assert not os.path.exists(os.path.join(workdir, "mail", "example.test", "alice")), \
        "the From: address is not a recipient"


def test_t_with_display_names_comments_and_groups(workdir, setup):
    petrel, _ = setup
    msg = (b"From: alice@example.test\n"
           b"To: \"Doe, John\" <john@example.test>, Bob <bob@example.test>\n"
           b"Cc: carol@example.test (Carol C.), undisclosed-recipients:;\n"
           b"Bcc: dave@example.test\n"
           b"Subject: real-world address lists\n"
           b"\n"
           b"body\n")
    r = sendmail(petrel, "-t", "-f", "alice@example.test", stdin=msg)
    assert r.returncode == 0, r.stderr
    for user in ("john", "bob", "carol", "dave"):
        m = parse(read_one(workdir, user))
        assert m["Bcc"] is None


def test_f_sets_the_envelope_sender(workdir, setup):
    petrel, peer = setup
    msg = b"Subject: envelope sender\n\nhello\n"
    r = sendmail(petrel, "-f", "carol@example.test", "bob@example.test",
                 "erin@example.net", stdin=msg)
    assert r.returncode == 0, r.stderr
    m = parse(read_one(workdir, "bob"))
    assert str(m["Return-Path"]).strip() == "<carol@example.test>"
    wait_delivered(peer, ["erin@example.net"], timeout=30)
    assert peer_transactions(peer)[0]["mail_from"] == "carol@example.test"

    # Without -f: some sender of this host (sendmail uses the login name).
    r = sendmail(petrel, "dave@example.test", stdin=msg)
    assert r.returncode == 0, r.stderr
    m = parse(read_one(workdir, "dave"))
    rp = str(m["Return-Path"]).strip()
    assert rp.startswith("<") and "@" in rp and rp != "<>", rp


def test_a_lone_dot_ends_input_without_i(workdir, setup):
    petrel, peer = setup
    msg = (b"Subject: dot ends it\n\nbefore the dot\n.\nafter the dot\n")
    r = sendmail(petrel, "-f", "alice@example.test", "bob@example.test",
                 "erin@example.net", stdin=msg)
    assert r.returncode == 0, r.stderr
    raw = read_one(workdir, "bob")
    assert raw.endswith(b"\n\nbefore the dot\n"), raw
    assert b"after the dot" not in raw
    wait_delivered(peer, ["erin@example.net"], timeout=30)
    with open(peer_transactions(peer)[0]["content_file"], "rb") as f:
        assert f.read().endswith(b"\r\n\r\nbefore the dot\r\n")

    # CRLF input: ".\r\n" ends it too.
    r = sendmail(petrel, "-f", "alice@example.test", "carol@example.test",
                 stdin=b"Subject: dot crlf\r\n\r\nbefore\r\n.\r\nafter\r\n")
    assert r.returncode == 0, r.stderr
    raw = read_one(workdir, "carol")
    assert raw.endswith(b"\n\nbefore\n") and b"after" not in raw, raw

    # Dots that are not alone on their line are text.
    r = sendmail(petrel, "-f", "alice@example.test", "dave@example.test",
                 stdin=b"Subject: dots\n\n..two\n.x\n. \nend\n")
    assert r.returncode == 0, r.stderr
    raw = read_one(workdir, "dave")
    assert raw.endswith(b"\n\n..two\n.x\n. \nend\n"), raw


def test_with_i_a_lone_dot_is_text(workdir, setup):
    petrel, peer = setup
    msg = (b"Subject: dot is text\n\nbefore the dot\n.\nafter the dot\n")
    for flag in ("-i", "--oi"):
        user = "bob" if flag == "-i" else "carol"
        r = sendmail(petrel, flag, "-f", "alice@example.test", f"{user}@example.test",
                     "erin@example.net", stdin=msg)
        assert r.returncode == 0, r.stderr
        raw = read_one(workdir, user)
        assert raw.endswith(b"\n\nbefore the dot\n.\nafter the dot\n"), raw
    wait_for(lambda: peer.stats()["delivered"].get("erin@example.net", 0) == 2, 30,
             "two copies for erin")
    for t in peer_transactions(peer):
        # Dot-stuffed on the wire, un-stuffed by the peer: the line survives.
        with open(t["raw_file"], "rb") as f:
            assert b"\r\n..\r\nafter the dot\r\n.\r\n" in f.read()
        with open(t["content_file"], "rb") as f:
            assert f.read().endswith(b"\r\nbefore the dot\r\n.\r\nafter the dot\r\n")


def test_refused_submissions_exit_non_zero(workdir, setup):
    petrel, _ = setup
    msg = b"Subject: nope\n\nbody\n"
    # No recipients, and -t with no recipient headers.
    for args in ([], ["-t"]):
        r = sendmail(petrel, "-f", "alice@example.test", *args, stdin=msg)
        assert r.returncode != 0 and b"recipient" in r.stderr.lower(), (args, r)
    # An invalid recipient or sender: nothing is queued.
    for args in (["bad..dots@example.test"], ["-f", "a@@b", "bob@example.test"]):
        r = sendmail(petrel, *args, stdin=msg)
        assert r.returncode != 0, (args, r)
        assert r.stderr.strip(), "says why"
    assert petrel.cli("queue", "list", "--json").stdout.strip() == "[]"
    for user in ("bob", "alice"):
        assert maildir_files(workdir, user) == []


def test_server_down_exit_non_zero_with_clear_message(workdir, setup):
    petrel, _ = setup
    petrel.stop()
    msg = b"Subject: nobody home\n\nbody\n"
    r = sendmail(petrel, "-f", "alice@example.test", "bob@example.test", stdin=msg)
    assert r.returncode != 0
    err = r.stderr.decode().lower()
    assert "petrel.sock" in err and ("running" in err or "reach" in err), r.stderr
    # After kill -9 too (a stale socket file may be left).
    petrel.start()
    petrel.kill9()
    r = sendmail(petrel, "-f", "alice@example.test", "bob@example.test", stdin=msg)
    assert r.returncode != 0 and r.stderr.strip()
    # Nothing was queued behind our back.
    assert petrel.spool_messages() == []


def test_missing_date_message_id_and_from_are_added(workdir, setup):
    petrel, _ = setup
    r = sendmail(petrel, "-f", "alice@example.test", "bob@example.test",
                 stdin=b"Subject: bare\n\nno Date, no Message-ID, no From\n")
    assert r.returncode == 0, r.stderr
    m = parse(read_one(workdir, "bob"))
    assert m["Date"] and m["Message-ID"] and m["From"], list(m.keys())
