"""Real SMTP clients from Debian: swaks and curl."""
import shutil
import subprocess

import pytest


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks(petrel):
    r = subprocess.run(
        ["swaks", "--server", f"{petrel.host}:{petrel.port}", "--from", "a@remote.example",
         "--to", "bob@example.test,carol@example.test", "--helo", "swaks.example",
         "--header", "Subject: from swaks", "--body", "hello from swaks",
         "--pipeline"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "queued as" in r.stdout
    petrel.stop()
    [m] = petrel.spool_messages()
    assert sorted(m["recipients"]) == ["bob@example.test", "carol@example.test"]


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
def test_swaks_chunking(petrel):
    body = "x" * 3000
    r = subprocess.run(
        ["swaks", "--server", f"{petrel.host}:{petrel.port}", "--from", "a@remote.example",
         "--to", "bob@example.test", "--body", body, "--pipeline"],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl(petrel, tmp_path):
    msg = tmp_path / "msg.eml"
    msg.write_bytes(b"From: a@remote.example\r\nTo: bob@example.test\r\n"
                    b"Subject: from curl\r\n\r\nhello from curl\r\n.leading dot\r\n")
    r = subprocess.run(
        ["curl", "-sS", f"smtp://{petrel.host}:{petrel.port}/client.example",
         "--mail-from", "a@remote.example", "--mail-rcpt", "bob@example.test",
         "--upload-file", str(msg)],
        capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    petrel.stop()
    [qid] = petrel.spool_ids()
    content = petrel.spool_content(qid)
    # curl dot-stuffs the line; petrel un-stuffs it: the octets round-trip.
    assert content.endswith(b"hello from curl\r\n.leading dot\r\n")
