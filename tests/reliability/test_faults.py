"""Faults (issue 5): an I/O error on a spool write, before the end of the
data and in the middle of a large message. Wanted: 451 4.3.0, never 250;
nothing of the failed message left in the spool; the next message accepted
once the disk works again, without a restart.

The fault is real at the system-call boundary: faultfs.c, preloaded into
petrel, fails every write and fsync to a file under the spool directory
with EIO while a trigger file exists (RocksDB's WAL, its tables, its
manifest). A full disk is test_disk_full.py in tests/integration (a small
tmpfs)."""
import os
import shutil
import subprocess
import time

import pytest

from conftest import Petrel, row as _row, session  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))


def build_shim(workdir):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler for the fault shim")
    out = os.path.join(workdir, "faultfs.so")
    subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", out,
                    os.path.join(HERE, "faultfs.c"), "-ldl"], check=True, timeout=120)
    return out


def send(c, body):
    """One transaction; returns the reply to the end of data."""
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(body + b".\r\n")
    return c.reply()


def message(subject, lines=3):
    return (b"Subject: " + subject.encode() + b"\r\n\r\n"
            + b"".join(b"line %d of the text\r\n" % i for i in range(lines)))


def test_io_error_on_a_spool_write(workdir, row):
    shim = build_shim(workdir)
    trigger = os.path.join(workdir, "fault-on")
    p = Petrel(workdir)
    p.env = {
        "LD_PRELOAD": shim,
        "PETREL_FAULT_TRIGGER": trigger,
        "PETREL_FAULT_DIR": p.spool + "/",
        # The ASan build wants its runtime first; the shim only wraps libc.
        "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0",
    }
    p.start()
    c = session(p)
    acked, refused = [], []

    code, lines = send(c, message("before the fault"))
    assert code == 250, lines
    acked.append("before the fault")

    # 1. The disk fails before the message: its end of data is refused.
    open(trigger, "w").close()
    code, lines = send(c, message("during the fault"))
    refused.append((code, lines[0]))
    assert code == 451 and lines[0].startswith("451 4.3.0"), (code, lines)

    # 2. The disk fails in the middle of a 6 MB message.
    os.unlink(trigger)
    half = b"".join(b"%07d " % i + b"m" * 90 + b"\r\n" for i in range(30000))
    assert c.cmd("MAIL FROM:<a@remote.example>")[0] == 250
    assert c.cmd("RCPT TO:<b@example.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: torn by the fault\r\n\r\n" + half)
    time.sleep(0.5)      # let petrel store the first half
    open(trigger, "w").close()
    c.send(half + b".\r\n")
    code, lines = c.reply()
    refused.append((code, lines[0]))
    assert code == 451 and lines[0].startswith("451 4.3.0"), (code, lines)
    assert c.cmd("NOOP")[0] == 250      # the session is still in step

    # 3. The disk works again: the next message is accepted without a
    # restart (the spool reopens its database, at most once a second).
    os.unlink(trigger)
    attempts = 0
    for attempts in range(1, 31):
        code, lines = send(c, message("after the fault"))
        if code == 250:
            acked.append("after the fault")
            break
        assert code == 451, (code, lines)
        time.sleep(0.2)
    assert code == 250, f"not accepted after {attempts} attempts: {lines}"
    c.cmd("QUIT")
    c.close()
    log = p.read_log()
    p.stop()
    msgs = p.spool_messages()
    subjects = []
    for m in msgs:
        text = p.cli("spool", "cat", m["id"]).stdout
        subjects.append(next((ln[9:] for ln in text.splitlines()
                              if ln.startswith("Subject: ")), "?"))
    row("faults", "EIO on every spool write and fsync (LD_PRELOAD shim): before "
        "a message, and in the middle of a 6 MB one; then the disk works again",
        f"replies {[' '.join(t.split()[:2]) for _, t in refused]}; next message "
        f"accepted after {attempts} attempt(s), no restart; spool holds "
        f"{len(msgs)} ({', '.join(sorted(subjects))}); 250s {len(acked)}")
    assert sorted(subjects) == sorted(acked), subjects
    assert b"spool write" in log or b"I/O error" in log or b"IO error" in log
