"""TLS and AUTH with real peers (issue 4): Postfix (a private loopback
instance, postfix_instance.py) relays into petrel with
smtp_tls_security_level = encrypt; petrel relays into Postfix over
STARTTLS under the encrypt policy; petrel relays to a Postfix submission
port (TLS required, AUTH with Cyrus SASL and a sasldb from sasl2-bin) with
the right password and with a wrong one; and petrel relays to a smarthost
that requires AUTH: a second petrel's submission listener."""
import os
import re
import smtplib
import sys

import pytest

from conftest import (SENDER, TESTS, Petrel, make_message, maildir_files, relay_config,
                      start_relay, submit, wait_for, wait_maildir)
import postfix_instance

sys.path.insert(0, os.path.join(TESTS, "integration"))
import certs  # noqa: E402

WAIT = 120.0


def _postfix(**kw):
    reason = postfix_instance.why_unavailable()
    if reason:
        pytest.skip(reason)
    try:
        return postfix_instance.PostfixInstance(**kw)
    except postfix_instance.PostfixUnavailable as e:
        pytest.skip(f"private Postfix cannot start: {e}")


def test_postfix_sends_to_petrel_with_tls_encrypt(workdir):
    certs.make_cert(workdir, "server", "mx.example.test")
    petrel = start_relay(workdir, {}, extra="""
[tls]
certificate = "server.pem"
private_key = "server.key"
""")
    pf = _postfix(mode="relay", relayhost=f"127.0.0.1:{petrel.port}",
                  extra_settings=["smtp_tls_security_level = encrypt",
                                  "smtp_tls_loglevel = 1"])
    try:
        content, msgid = make_message(subject="Postfix to petrel, encrypt")
        with smtplib.SMTP("127.0.0.1", pf.port, timeout=60) as s:
            assert s.sendmail(SENDER, ["bob@example.test"], content) == {}
        wait_maildir(workdir, "bob", 1, WAIT)
        log = pf.log()
    finally:
        pf.stop()
    petrel.stop()
    [path] = maildir_files(workdir, "bob")
    got = open(path, "rb").read()
    assert msgid.encode() in got
    # petrel's Received: names TLS (RFC 3848 ESMTPS) and the cipher.
    assert re.search(rb"\(using TLSv1\.[23] with cipher [A-Z0-9_-]+", got), got[:600]
    assert b"with ESMTPS id" in got
    assert re.search(r"TLS connection established to 127\.0\.0\.1\[127\.0\.0\.1\]:"
                     + str(petrel.port), log), log[-2000:]
    assert "status=sent" in log


def test_petrel_relays_into_postfix_over_starttls(workdir):
    d = os.path.join(workdir, "pf-tls")
    os.makedirs(d)
    cert, key = certs.make_cert(d, "postfix", "postfix.example.org")
    os.chmod(d, 0o755)
    for f in (cert, key):
        os.chmod(f, 0o644)
    pf = _postfix(mode="hold", extra_settings=[
        f"smtpd_tls_cert_file = {cert}", f"smtpd_tls_key_file = {key}",
        "smtpd_tls_security_level = may", "smtpd_tls_loglevel = 1",
        "smtpd_tls_received_header = yes"])
    try:
        petrel = start_relay(workdir, {"example.org": f"127.0.0.1:{pf.port}"}, extra="""
[tls_policy]
"example.org" = "encrypt"
""")
        content, msgid = make_message(subject="petrel to Postfix, encrypt")
        qid, refused = submit(petrel, ["carol@example.org"], content)
        assert refused == {}
        pf.wait_queue(lambda q: len(q) == 1, WAIT, "the message in Postfix's hold queue")
        [m] = pf.queue()
        got = pf.content(m["queue_id"])
        log = pf.log()
        petrel.stop()
    finally:
        pf.stop()
    assert msgid.encode() in got if isinstance(got, bytes) else msgid in got
    assert re.search(r"TLS connection established from", log), log[-2000:]
    text = got.decode() if isinstance(got, bytes) else got
    assert re.search(r"\(using TLSv1\.[23] with cipher", text), text[:800]
    assert b"Untrusted TLS connection established to 127.0.0.1[127.0.0.1]:" \
        in petrel.read_log() or b"TLS connection established to" in petrel.read_log()


def test_petrel_relays_to_a_submission_smarthost_with_auth(workdir):
    """The smarthost is a second petrel: a submission listener that requires
    STARTTLS and AUTH, and delivers example.net into its own Maildirs."""
    hub_dir = os.path.join(workdir, "smarthost")
    os.makedirs(hub_dir)
    ca = certs.make_ca(hub_dir)
    certs.make_cert(hub_dir, "server", "mx.example.test", ca=ca)
    import subprocess
    from conftest import free_port
    r = subprocess.run([Petrel.__init__.__globals__["PETREL"], "passwd", "relay",
                        "--file", os.path.join(hub_dir, "users")],
                       input="hub password\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    sub_port = free_port()
    hub = Petrel(hub_dir, local_domains=("example.net",), extra_config=f"""
[[listener]]
address = "127.0.0.1:{sub_port}"
mode = "submission"

[tls]
certificate = "server.pem"
private_key = "server.key"

[auth]
users = "users"
sender_login_match = false

[delivery]
retry_schedule = ["1s"]

[local]
maildir = "mail/{{domain}}/{{user}}"
""").start()
    with open(os.path.join(workdir, "relay-credentials"), "w") as f:
        f.write(f"[127.0.0.1]:{sub_port} relay:hub password\n")
    petrel = start_relay(workdir, {"example.net": f"127.0.0.1:{sub_port}"}, extra=f"""
[tls_policy]
"example.net" = "encrypt"
""")
    petrel.stop()
    cfg = open(petrel.config_path).read().replace(
        'retry_schedule = ["1s"]',
        'retry_schedule = ["1s"]\ncredentials = "relay-credentials"')
    open(petrel.config_path, "w").write(cfg)
    petrel.start()
    content, msgid = make_message(subject="to the smarthost, with AUTH")
    qid, refused = submit(petrel, ["dan@example.net"], content)
    assert refused == {}
    wait_for(lambda: maildir_files(hub_dir, "dan", "example.net"), WAIT,
             "delivery through the smarthost")
    hub.stop()
    petrel.stop()
    [path] = maildir_files(hub_dir, "dan", "example.net")
    got = open(path, "rb").read()
    assert msgid.encode() in got
    assert b"with ESMTPSA id" in got
    assert b"sasl_username=relay" in hub.read_log()
    assert b"hub password" not in petrel.read_log()



def _postfix_submission(workdir):
    """A Postfix smtpd set up as a submission port (master.cf's submission
    entry): TLS required, AUTH only inside TLS, Cyrus SASL with a sasldb,
    relaying only for authenticated clients (mynetworks does not hold
    127.0.0.1). The user is relayuser, password "pf s3cret"."""
    d = os.path.join(workdir, "pf-submission")
    os.makedirs(d)
    cert, key = certs.make_cert(d, "postfix", "postfix.example.org")
    os.chmod(d, 0o755)
    for f in (cert, key):
        os.chmod(f, 0o644)
    return _postfix(mode="hold", sasl_users={"relayuser": "pf s3cret"}, extra_settings=[
        f"smtpd_tls_cert_file = {cert}", f"smtpd_tls_key_file = {key}",
        "smtpd_tls_security_level = encrypt", "smtpd_tls_auth_only = yes",
        "smtpd_sasl_auth_enable = yes", "smtpd_sasl_local_domain = $myhostname",
        "mynetworks = 127.0.0.2/32",
        "smtpd_client_restrictions = permit_sasl_authenticated, reject",
        "smtpd_relay_restrictions = permit_sasl_authenticated, reject"])


def _petrel_to(workdir, port, password):
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "relay-credentials"), "w") as f:
        f.write(f"[127.0.0.1]:{port} relayuser:{password}\n")
    cfg = relay_config({"example.org": f"127.0.0.1:{port}"}, extra="""
[tls_policy]
"example.org" = "encrypt"
""").replace('retry_schedule = ["1s"]',
             'retry_schedule = ["1s"]\ncredentials = "relay-credentials"')
    return Petrel(workdir, extra_config=cfg).start()


def test_petrel_relays_to_a_postfix_submission_port_with_auth(workdir):
    pf = _postfix_submission(workdir)
    try:
        # Without credentials Postfix refuses to relay: the port really
        # requires AUTH.
        with smtplib.SMTP("127.0.0.1", pf.port, timeout=60) as s:
            s.starttls()
            s.ehlo()
            with pytest.raises(smtplib.SMTPException):
                s.sendmail(SENDER, ["carol@example.org"], b"Subject: no auth\r\n\r\nx\r\n")
        petrel = _petrel_to(os.path.join(workdir, "good"), pf.port, "pf s3cret")
        content, msgid = make_message(subject="petrel to a Postfix submission port")
        qid, refused = submit(petrel, ["carol@example.org"], content)
        assert refused == {}
        pf.wait_queue(lambda q: len(q) == 1, WAIT, "the message in Postfix's hold queue")
        [m] = pf.queue()
        got = pf.content(m["queue_id"])
        log = pf.log()
        wait_for(lambda: b"status=sent" in petrel.read_log(), WAIT, "petrel's sent line")
        petrel.stop()
    finally:
        pf.stop()
    text = got.decode() if isinstance(got, bytes) else got
    assert msgid in text
    assert re.search(r"with ESMTPSA id", text), text[:800]
    assert "sasl_method=PLAIN, sasl_username=relayuser@postfix.example.org" in log, \
        log[-2000:]
    plog = petrel.read_log()
    assert b"pf s3cret" not in plog
    assert re.search(rb"to=<carol@example\.org>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, "
                     rb".*status=sent", plog), plog[-2000:]


def test_wrong_password_at_a_postfix_submission_port_defers(workdir):
    pf = _postfix_submission(workdir)
    try:
        petrel = _petrel_to(os.path.join(workdir, "bad"), pf.port, "bad-pw-9731")
        content, msgid = make_message(subject="wrong password")
        qid, refused = submit(petrel, ["carol@example.org"], content)
        assert refused == {}
        wait_for(lambda: b"status=deferred" in petrel.read_log(), WAIT,
                 "petrel's deferred line")
        petrel.stop()
        queue = pf.queue()
        log = pf.log()
    finally:
        pf.stop()
    assert queue == []
    assert "authentication failed" in log
    plog = petrel.read_log()
    assert re.search(rb"to=<carol@example\.org>.*status=deferred \(.*535", plog), \
        plog[-2000:]
    assert b"bad-pw-9731" not in plog
    assert [m for m in petrel.spool_messages()] != []   # still queued for a retry
