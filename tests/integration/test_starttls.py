"""STARTTLS on the server (RFC 3207) with a certificate made at test time,
against smtplib, swaks and a raw client that injects plaintext behind
STARTTLS (CVE-2011-0411)."""
import shutil
import smtplib
import ssl
import subprocess

import pytest

from conftest import Petrel, queued_id


@pytest.fixture
def tls_petrel(workdir):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{workdir}/key.pem",
         "-out", f"{workdir}/cert.pem", "-days", "2", "-subj", "/CN=mx.example.test",
         "-addext", "subjectAltName=DNS:mx.example.test"],
        check=True, capture_output=True)
    p = Petrel(workdir, extra_config='[tls]\ncertificate = "cert.pem"\nprivate_key = "key.pem"\n')
    p.start()
    yield p
    p.stop()


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_smtplib_starttls(tls_petrel):
    p = tls_petrel
    with smtplib.SMTP(p.host, p.port, timeout=30) as s:
        s.ehlo("c.example")
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=client_context())
        assert code == 220
        s.ehlo("c.example")
        assert not s.has_extn("starttls")
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        s.mail("a@remote.example")
        s.rcpt("b@example.test")
        code, text = s.data(b"Subject: over tls\r\n\r\nsecret\r\n")
        assert code == 250
        qid = queued_id([text.decode()])
    p.stop()
    content = p.spool_content(qid)
    assert b"\t(using TLSv1." in content
    assert f"with ESMTPS id {qid}".encode() in content
    [m] = p.spool_messages()
    assert m["protocol"] == "ESMTPS"


def test_old_tls_versions_are_refused(tls_petrel):
    p = tls_petrel
    ctx = client_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with smtplib.SMTP(p.host, p.port, timeout=30) as s:
        s.ehlo("c.example")
        with pytest.raises((ssl.SSLError, OSError, smtplib.SMTPServerDisconnected)):
            s.starttls(context=ctx)


def test_plaintext_injected_after_starttls_is_dropped(tls_petrel):
    p = tls_petrel
    c = p.connect()
    assert c.reply()[0] == 220
    c.cmd("EHLO c.example")
    # Both lines in one packet: the NOOP must never be answered inside TLS.
    c.send(b"STARTTLS\r\nNOOP\r\n")
    code, lines = c.reply()
    assert code == 220
    assert c.buf == b""
    tls = client_context().wrap_socket(c.sock, server_hostname="mx.example.test")
    tls.sendall(b"EHLO c.example\r\n")
    data = b""
    while not data.endswith(b"\r\n") or b"250 " not in data:
        chunk = tls.recv(4096)
        assert chunk, data
        data += chunk
    first = data.split(b"\r\n")[0]
    assert first == b"250-mx.example.test", data
    tls.sendall(b"QUIT\r\n")
    tls.close()
    p.stop()
    assert b"pipelined after STARTTLS" in p.read_log()


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_tls(tls_petrel):
    p = tls_petrel
    r = subprocess.run(
        ["swaks", "--server", f"{p.host}:{p.port}", "--tls", "--from", "a@remote.example",
         "--to", "b@example.test", "--helo", "swaks.example"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "queued as" in r.stdout


def test_bad_certificate_refuses_to_start(workdir):
    open(f"{workdir}/cert.pem", "w").write("not a certificate\n")
    open(f"{workdir}/key.pem", "w").write("not a key\n")
    p = Petrel(workdir, extra_config='[tls]\ncertificate = "cert.pem"\nprivate_key = "key.pem"\n')
    r = p.cli("serve", check=False)
    assert r.returncode == 1
    assert "tls.certificate" in r.stderr
