"""Submission (RFC 6409, RFC 8314) and AUTH (RFC 4954) on the real binary:
a users file written by `petrel passwd`, STARTTLS on the smtp and
submission listeners, implicit TLS on submissions, real clients (swaks,
smtplib, curl, openssl s_client), the brute-force guard, the sender check,
and certificate reload on SIGHUP. Certificates are made at test time."""
import base64
import os
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess

import pytest

import certs
from conftest import PETREL, Petrel, free_port, queued_id, wait_for

USER, PASSWORD = "alice", "correct horse battery"


def passwd(path, user, password):
    r = subprocess.run([PETREL, "passwd", user, "--file", path], input=password + "\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r


class Submission:
    """petrel with smtp (STARTTLS), submission and submissions listeners."""

    def __init__(self, workdir, auth_extra="", trusted=("127.0.0.0/8", "::1/128")):
        self.ca = certs.make_ca(workdir)
        certs.make_cert(workdir, "server", "mx.example.test", ca=self.ca)
        self.users = os.path.join(workdir, "users")
        passwd(self.users, USER, PASSWORD)
        self.submission_port = free_port()
        self.submissions_port = free_port()
        self.p = Petrel(workdir, trusted=trusted, extra_config=f"""
[[listener]]
address = "127.0.0.1:{self.submission_port}"
mode = "submission"

[[listener]]
address = "127.0.0.1:{self.submissions_port}"
mode = "submissions"

[tls]
certificate = "server.pem"
private_key = "server.key"

[auth]
users = "users"
{auth_extra}
""")

    def context(self):
        """Trusts the test CA; smtplib names the peer 127.0.0.1, so the
        name is checked only where a test says so."""
        ctx = ssl.create_default_context(cafile=self.ca[0])
        ctx.check_hostname = False
        return ctx


@pytest.fixture
def sub(workdir):
    s = Submission(workdir, auth_extra='failure_delay = "1s"\nmax_failures_per_ip = 3\n')
    s.p.start()
    yield s
    s.p.stop()


def b64(text):
    return base64.b64encode(text.encode()).decode()


def test_users_file_holds_a_hash_never_the_password(sub):
    text = open(sub.users).read()
    assert text.startswith("alice:$y$")
    assert PASSWORD not in text
    assert oct(os.stat(sub.users).st_mode & 0o777) == "0o600"


def test_smtplib_starttls_login_on_submission(sub):
    p = sub.p
    with smtplib.SMTP(p.host, sub.submission_port, timeout=30) as s:
        s.ehlo("c.example")
        assert not s.has_extn("auth")  # never offered in plaintext
        code, text = s.mail("alice@example.test")
        assert code == 530 and b"5.7.0" in text
        s.rset()
        s.starttls(context=sub.context())
        s.ehlo("c.example")
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        s.login(USER, PASSWORD)
        # Relay to any domain once authenticated.
        s.sendmail("alice@example.test", ["someone@far.example"],
                   b"Subject: submitted\r\n\r\nhello\r\n")
    p.stop()
    [m] = p.spool_messages()
    assert m["protocol"] == "ESMTPSA"
    content = p.spool_content(m["id"])
    assert f"with ESMTPSA id {m['id']}".encode() in content
    assert b"(using TLSv1." in content
    log = p.read_log().decode()
    assert "sasl_method=PLAIN, sasl_username=alice" in log or \
        "sasl_method=LOGIN, sasl_username=alice" in log


def test_auth_before_tls_is_refused_with_538(sub):
    c = socket.create_connection((sub.p.host, sub.submission_port), timeout=30)
    f = c.makefile("rb")
    assert f.readline().startswith(b"220 ")
    c.sendall(b"EHLO c.example\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    c.sendall(f"AUTH PLAIN {b64(chr(0) + USER + chr(0) + PASSWORD)}\r\n".encode())
    assert f.readline() == b"538 5.7.11 Encryption required for requested authentication mechanism\r\n"
    c.close()


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
@pytest.mark.parametrize("how", ["starttls-plain", "implicit-login"])
def test_swaks_tls_and_auth(sub, how):
    port = sub.submission_port if how.startswith("starttls") else sub.submissions_port
    tls_flag = "--tls" if how.startswith("starttls") else "--tlsc"
    mech = "PLAIN" if how.endswith("plain") else "LOGIN"
    r = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{port}", tls_flag, "--auth", mech,
         "--auth-user", USER, "--auth-password", PASSWORD,
         "--from", "alice@example.test", "--to", "bob@far.example", "--helo", "c.example"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0 Authentication successful" in r.stdout
    assert "queued as" in r.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_smtps(sub, workdir):
    msg = os.path.join(workdir, "msg.eml")
    with open(msg, "w") as f:
        f.write("From: alice@example.test\r\nSubject: curl\r\n\r\nvia smtps\r\n")
    r = subprocess.run(
        ["curl", "-sS", "--cacert", sub.ca[0], "--resolve",
         f"mx.example.test:{sub.submissions_port}:127.0.0.1",
         f"smtps://mx.example.test:{sub.submissions_port}", "--user", f"{USER}:{PASSWORD}",
         "--mail-from", "alice@example.test", "--mail-rcpt", "carol@far.example",
         "--upload-file", msg],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    sub.p.stop()
    assert any(m["protocol"] == "ESMTPSA" for m in sub.p.spool_messages())


def test_openssl_s_client_starttls_sees_auth(sub):
    r = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect",
         f"127.0.0.1:{sub.submission_port}", "-CAfile", sub.ca[0],
         "-verify_hostname", "mx.example.test", "-verify_return_error", "-quiet",
         "-name", "c.example"],
        input="EHLO c.example\r\nQUIT\r\n", capture_output=True, text=True, timeout=60)
    assert "250-AUTH PLAIN LOGIN" in r.stdout or "250 AUTH PLAIN LOGIN" in r.stdout, \
        r.stdout + r.stderr
    assert "221 2.0.0" in r.stdout


def tls_session(host, port, ctx):
    """EHLO, STARTTLS, EHLO: returns a file-like reader and the TLS socket."""
    raw = socket.create_connection((host, port), timeout=30)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220 ")
    raw.sendall(b"EHLO c.example\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    raw.sendall(b"STARTTLS\r\n")
    assert f.readline().startswith(b"220 ")
    tls = ctx.wrap_socket(raw, server_hostname="mx.example.test")
    tf = tls.makefile("rb")
    tls.sendall(b"EHLO c.example\r\n")
    while not tf.readline().startswith(b"250 "):
        pass
    return tls, tf


def test_brute_force_is_slowed_then_refused(sub):
    p = sub.p
    tls, f = tls_session(p.host, sub.submission_port, sub.context())
    wrong = b64("\0alice\0guess")
    unknown = b64("\0nobody\0guess")
    answers = []
    for cred in (wrong, unknown, wrong):
        tls.sendall(f"AUTH PLAIN {cred}\r\n".encode())
        answers.append(f.readline())
    # The same answer for an unknown user as for a wrong password.
    assert answers == [b"535 5.7.8 Authentication credentials invalid\r\n"] * 3
    # Past max_failures_per_ip, even the right password is not checked.
    tls.sendall(f"AUTH PLAIN {b64(chr(0) + USER + chr(0) + PASSWORD)}\r\n".encode())
    assert f.readline().startswith(b"421 4.7.0 ")
    assert f.readline() == b""  # closed
    tls.close()
    # And from a new connection, too.
    tls, f = tls_session(p.host, sub.submission_port, sub.context())
    tls.sendall(f"AUTH PLAIN {b64(chr(0) + USER + chr(0) + PASSWORD)}\r\n".encode())
    assert f.readline().startswith(b"421 4.7.0 ")
    tls.close()
    log = p.read_log().decode()
    assert log.count("authentication failed for user") == 3
    assert PASSWORD not in log and "guess" not in log


def test_sender_must_be_the_users_own(sub):
    with smtplib.SMTP(sub.p.host, sub.submission_port, timeout=30) as s:
        s.starttls(context=sub.context())
        s.login(USER, PASSWORD)
        code, text = s.mail("ceo@example.test")
        assert code == 553 and text.startswith(b"5.7.1 "), text
        s.rset()
        code, _ = s.mail("alice@example.test")
        assert code == 250


def test_passwd_takes_effect_without_reload(sub):
    passwd(sub.users, "bob", "another secret")
    with smtplib.SMTP(sub.p.host, sub.submission_port, timeout=30) as s:
        s.starttls(context=sub.context())
        s.login("bob", "another secret")


def test_authenticated_client_relays_from_an_untrusted_address(workdir):
    s = Submission(workdir, trusted=("10.0.0.0/8",))
    p = s.p.start()
    with smtplib.SMTP(p.host, p.port, timeout=30) as c:  # the smtp listener
        c.starttls(context=s.context())
        c.ehlo("c.example")
        code, _ = c.mail("x@remote.example")
        assert code == 250
        code, _ = c.rcpt("v@far.example")
        assert code == 554  # no relay before AUTH
        c.rset()
        c.login(USER, PASSWORD)
        c.sendmail("alice@example.test", ["v@far.example"], b"Subject: r\r\n\r\nx\r\n")
    p.stop()


def test_submission_listener_needs_auth_section(workdir):
    certs.make_cert(workdir, "server", "mx.example.test")
    p = Petrel(workdir, extra_config=f"""
[[listener]]
address = "127.0.0.1:{free_port()}"
mode = "submission"

[tls]
certificate = "server.pem"
private_key = "server.key"
""")
    r = p.cli("check-config", check=False)
    assert r.returncode == 1
    assert 'mode: "submission" needs an [auth] section' in r.stderr


def peer_fingerprint(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="mx.example.test") as tls:
            der = tls.getpeercert(binary_form=True)
            tls.recv(1024)
    return ssl.DER_cert_to_PEM_cert(der)


def test_sighup_reloads_the_certificate_without_dropping_sessions(sub, workdir):
    p = sub.p
    old_pem = open(os.path.join(workdir, "server.pem")).read()
    assert peer_fingerprint(sub.submissions_port, sub.ca[0]).strip() == old_pem.strip()
    # A session in progress, under the old certificate.
    tls, f = tls_session(p.host, sub.submission_port, sub.context())
    tls.sendall(f"AUTH PLAIN {b64(chr(0) + USER + chr(0) + PASSWORD)}\r\n".encode())
    assert f.readline().startswith(b"235 ")
    # A new certificate in place of the old one, then SIGHUP.
    os.makedirs(os.path.join(workdir, "new"))
    pem, key = certs.make_cert(os.path.join(workdir, "new"), "server", "mx.example.test",
                               ca=sub.ca)
    shutil.copy(pem, os.path.join(workdir, "server.pem"))
    shutil.copy(key, os.path.join(workdir, "server.key"))
    start = len(p.read_log())
    p.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: b"reload" in p.read_log()[start:], what="reload logged")
    new_pem = open(pem).read()
    assert peer_fingerprint(sub.submissions_port, sub.ca[0]).strip() == new_pem.strip()
    # The old session carries on.
    tls.sendall(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<z@far.example>\r\nDATA\r\n")
    assert f.readline().startswith(b"250 ")
    assert f.readline().startswith(b"250 ")
    assert f.readline().startswith(b"354 ")
    tls.sendall(b"Subject: across a reload\r\n\r\nbody\r\n.\r\n")
    assert b"queued as" in f.readline()
    tls.close()
