"""A full disk: 452 4.3.1, never 250 for a message that is not stored, and
recovery by itself once space returns. The spool lives on a small tmpfs
(needs root to mount; skipped otherwise)."""
import os
import subprocess

import pytest

from conftest import Petrel


@pytest.fixture
def small_fs(workdir):
    mnt = os.path.join(workdir, "spool")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", mnt],
                       capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.decode())
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", mnt])


def send(c, size):
    c.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<b@example.test>\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: fill\r\n\r\n" + (b"f" * 998 + b"\r\n") * (size // 1000) + b".\r\n")
    return c.reply()


def test_disk_full_then_recovery(workdir, small_fs):
    p = Petrel(workdir).start()
    filler = os.path.join(small_fs, "filler")
    try:
        c = p.connect(timeout=60)
        c.reply()
        c.cmd("EHLO c.example")
        acked = 0
        for _ in range(3):  # some mail is queued before the disk fills
            assert send(c, 10_000)[0] == 250
            acked += 1
        # Fill the disk from outside.
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=128"],
                       capture_output=True)
        refused = None
        for _ in range(50):
            code, lines = send(c, 1_000_000)
            if code == 250:
                acked += 1
                continue
            refused = (code, lines)
            break
        assert refused is not None, "the disk never filled"
        assert refused[0] in (452, 451), refused
        if refused[0] == 452:
            assert "4.3.1" in refused[1][0]
        # Space returns: the next message is accepted without a restart.
        os.unlink(filler)
        for _ in range(100):
            code, lines = send(c, 10_000)
            if code == 250:
                break
        assert code == 250, lines
        c.cmd("QUIT")
    finally:
        p.stop()
    assert len(p.spool_ids()) == acked + 1
