"""The SMTP client's TLS policies (none, may, encrypt, verify; issue 4) and
AUTH towards a smarthost, against the scripted peer speaking STARTTLS with
certificates made at test time: one signed by a test CA, an expired one,
one for another name, and a self-signed one. The peer is reached by name
(dnsmasq serves its A record) so that the certificate's name is checked.
Under encrypt/verify nothing is sent in plaintext, and nothing at all after
a bad certificate; under may a broken handshake is retried in plaintext at
once, and logged."""
import importlib.util
import json
import os
import sys

import pytest

from conftest import (DELIVERY_TIMEOUT, TESTS, Petrel, assert_exactly_once, make_message,
                      submit, wait_delivered, wait_for)

sys.path.insert(0, os.path.join(TESTS, "integration"))
import certs  # noqa: E402

_spec = importlib.util.spec_from_file_location(
    "petrel_dnsmasq", os.path.join(TESTS, "integration", "dnsmasq.py"))
dnsmasq = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(dnsmasq)

pytestmark = pytest.mark.skipif(not dnsmasq.Dnsmasq.available(),
                                reason="dnsmasq is not installed")

PEER_NAME = "smarthost.example.net"
RCPT = "bob@example.net"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    ca = certs.make_ca(d)
    return {
        "ca": ca,
        "good": certs.make_cert(d, "good", PEER_NAME, ca=ca),
        "expired": certs.make_cert(d, "expired", PEER_NAME, ca=ca, expired=True),
        "wrong-name": certs.make_cert(d, "wrong", "other.example.org", ca=ca),
        "self-signed": certs.make_cert(d, "self", PEER_NAME),
    }


@pytest.fixture(scope="module")
def dns():
    d = dnsmasq.Dnsmasq(dnsmasq.host(PEER_NAME, "127.0.0.1"))
    yield d
    d.stop()


def start_relay(workdir, dns, pki, peer, policy, credentials=None):
    delivery = f'tls_ca_file = "{pki["ca"][0]}"\n'
    if credentials is not None:
        with open(os.path.join(workdir, "relay-credentials"), "w") as f:
            f.write(f"[{PEER_NAME}]:{peer.port} {credentials}\n")
        delivery += 'credentials = "relay-credentials"\n'
    return Petrel(workdir, extra_config=f"""
[routes]
"example.net" = "{PEER_NAME}:{peer.port}"

[tls_policy]
"example.net" = "{policy}"

[dns]
servers = ["{dns.server}"]

[delivery]
retry_schedule = ["1s"]
{delivery}
[local]
maildir = "mail/{{domain}}/{{user}}"
""").start()


def peer_tls(pki, which, **more):
    cert, key = pki[which]
    return dict(tls_cert=cert, tls_key=key, **more)


def send_one(petrel, subject):
    content, msgid = make_message(subject=subject)
    qid, refused = submit(petrel, [RCPT], content)
    assert refused == {}
    return qid, msgid


def deferred_attempts(petrel, qid, attempts=2):
    """Waits for `attempts` failed attempts; returns the recipient's row."""
    def tried():
        r = petrel.cli("queue", "list", "--json")
        rows = {m["id"]: m for m in json.loads(r.stdout)}
        m = rows.get(qid)
        assert m is not None, f"{qid} left the queue: {rows}"
        d = m["recipients_detail"][0]
        return d if d["attempts"] >= attempts and d["last_reply"] else None
    d = wait_for(tried, DELIVERY_TIMEOUT, f"{attempts} deferred attempts")
    assert d["state"] == "pending", d
    return d


def verbs(stats):
    return [c.split(" ", 1)[0].upper() for conn in stats["connections"]
            for c in conn["commands"]]


def test_verify_delivers_over_a_verified_connection(workdir, start_peer, pki, dns):
    peer = start_peer("accept", **peer_tls(pki, "good"))
    petrel = start_relay(workdir, dns, pki, peer, "verify")
    _, msgid = send_one(petrel, "verify, good certificate")
    st = wait_delivered(peer, [RCPT])
    assert_exactly_once(st, [RCPT], msgid)
    [conn] = [c for c in st["connections"] if c.get("tls")]
    assert conn["tls"] in ("TLSv1.2", "TLSv1.3")
    assert b"Verified TLS connection established to " + PEER_NAME.encode() in petrel.read_log()


@pytest.mark.parametrize("which", ["expired", "self-signed", "wrong-name"])
def test_verify_refuses_a_bad_certificate_and_sends_nothing(workdir, start_peer, pki, dns,
                                                           which):
    peer = start_peer("accept", **peer_tls(pki, which))
    petrel = start_relay(workdir, dns, pki, peer, "verify")
    qid, _ = send_one(petrel, f"verify, {which}")
    d = deferred_attempts(petrel, qid)
    assert "not verified" in d["last_reply"], d
    st = peer.stats()
    # Every connection got as far as STARTTLS and no further.
    assert set(verbs(st)) <= {"EHLO", "STARTTLS"}, verbs(st)
    assert st["transaction_count"] == 0
    assert all(c.get("tls") is None or c["commands"][-1].upper() == "STARTTLS"
               for c in st["connections"])


def test_encrypt_takes_any_certificate(workdir, start_peer, pki, dns):
    peer = start_peer("accept", **peer_tls(pki, "self-signed"))
    petrel = start_relay(workdir, dns, pki, peer, "encrypt")
    _, msgid = send_one(petrel, "encrypt, self-signed")
    st = wait_delivered(peer, [RCPT])
    assert_exactly_once(st, [RCPT], msgid)
    assert b"Untrusted TLS connection established" in petrel.read_log()


def test_encrypt_without_starttls_defers_and_sends_nothing(workdir, start_peer, pki, dns):
    peer = start_peer("accept")  # no certificate: no STARTTLS
    petrel = start_relay(workdir, dns, pki, peer, "encrypt")
    qid, _ = send_one(petrel, "encrypt, no STARTTLS")
    d = deferred_attempts(petrel, qid)
    assert "TLS is required" in d["last_reply"], d
    st = peer.stats()
    assert set(verbs(st)) <= {"EHLO", "QUIT"}, verbs(st)
    assert st["transaction_count"] == 0


def test_may_retries_a_broken_handshake_in_plaintext(workdir, start_peer, pki, dns):
    peer = start_peer("accept", **peer_tls(pki, "good", tls_mode="broken"))
    petrel = start_relay(workdir, dns, pki, peer, "may")
    _, msgid = send_one(petrel, "may, broken handshake")
    st = wait_delivered(peer, [RCPT])
    assert_exactly_once(st, [RCPT], msgid)
    conns = st["connections"]
    assert conns[0]["closed_by"] == "tls_broken"
    assert "STARTTLS" not in [c.upper() for c in conns[1]["commands"]]
    log = petrel.read_log()
    assert b"TLS handshake failed with " in log and b"retrying in plaintext" in log


def test_may_discards_a_reply_injected_before_the_handshake(workdir, start_peer, pki, dns):
    peer = start_peer("accept", **peer_tls(pki, "good", tls_mode="inject"))
    petrel = start_relay(workdir, dns, pki, peer, "may")
    _, msgid = send_one(petrel, "may, injected 250")
    st = wait_delivered(peer, [RCPT])
    assert_exactly_once(st, [RCPT], msgid)
    assert st["violations"] == []
    # EHLO again inside TLS, then the mail.
    [conn] = st["connections"]
    assert [c.split(" ")[0].upper() for c in conn["commands"]][:3] == \
        ["EHLO", "STARTTLS", "EHLO"]
    assert b"discarded" in petrel.read_log()


def test_none_never_starts_tls(workdir, start_peer, pki, dns):
    peer = start_peer("accept", **peer_tls(pki, "good"))
    petrel = start_relay(workdir, dns, pki, peer, "none")
    send_one(petrel, "none")
    st = wait_delivered(peer, [RCPT])
    assert "STARTTLS" not in verbs(st)


def test_auth_to_a_smarthost_inside_tls(workdir, start_peer, pki, dns):
    peer = start_peer("accept", **peer_tls(pki, "good", auth_user="relay@example.test",
                                           auth_password="s3cret: with spaces"))
    petrel = start_relay(workdir, dns, pki, peer, "verify",
                         credentials="relay@example.test:s3cret: with spaces")
    _, msgid = send_one(petrel, "auth to smarthost")
    st = wait_delivered(peer, [RCPT])
    assert_exactly_once(st, [RCPT], msgid)
    [conn] = st["connections"]
    assert conn["auth"] == "relay@example.test" and conn["tls"]
    assert b"s3cret" not in petrel.read_log()


def test_auth_credentials_are_never_sent_without_tls(workdir, start_peer, pki, dns):
    peer = start_peer("accept", auth_user="relay@example.test", auth_password="pw")
    petrel = start_relay(workdir, dns, pki, peer, "may",
                         credentials="relay@example.test:pw")
    qid, _ = send_one(petrel, "auth without tls")
    d = deferred_attempts(petrel, qid)
    assert "not sending them in plaintext" in d["last_reply"], d
    assert "AUTH" not in verbs(peer.stats())


def test_a_refused_login_defers(workdir, start_peer, pki, dns):
    peer = start_peer("accept", **peer_tls(pki, "good", auth_user="relay@example.test",
                                           auth_password="right"))
    petrel = start_relay(workdir, dns, pki, peer, "encrypt",
                         credentials="relay@example.test:wrong")
    qid, _ = send_one(petrel, "wrong password")
    d = deferred_attempts(petrel, qid)
    assert "535" in d["last_reply"], d
    assert peer.stats()["transaction_count"] == 0
