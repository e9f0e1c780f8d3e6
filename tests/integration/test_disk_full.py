"""A full disk: 452 4.3.1 at MAIL while free space is low ([spool]
min_free_space), 452 4.3.1 or 451 4.3.0 (never 250) when the disk fills in
the middle of the data, nothing half-written, and recovery by itself once
space returns. The spool lives on a small tmpfs
(needs root to mount; skipped otherwise)."""
import os
import subprocess
import time

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


def with_min_free(p, value):
    """Sets [spool] min_free_space in p's generated config."""
    with open(p.config_path) as f:
        cfg = f.read()
    with open(p.config_path, "w") as f:
        f.write(cfg.replace('path = "spool"', f'path = "spool"\nmin_free_space = {value}', 1))
    return p


def send(c, size):
    c.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<b@example.test>\r\n")
    assert c.reply()[0] == 250
    assert c.reply()[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: fill\r\n\r\n" + (b"f" * 998 + b"\r\n") * (size // 1000) + b".\r\n")
    return c.reply()


def test_disk_full_then_recovery(workdir, small_fs):
    """[spool] min_free_space off: the disk fills in the middle of the data.
    The end of data is refused (452 4.3.1 or 451 4.3.0), never 250, and the
    next message is accepted once space returns, without a restart."""
    p = with_min_free(Petrel(workdir), "0").start()
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


def test_low_space_refuses_mail(workdir, small_fs):
    """[spool] min_free_space (Postfix queue_minfree): with less free space
    than that plus the declared SIZE, MAIL gets 452 4.3.1 before any data
    is sent; when space returns, MAIL is accepted again."""
    p = with_min_free(Petrel(workdir), '"16MiB"').start()
    filler = os.path.join(small_fs, "filler")
    try:
        c = p.connect(timeout=60)
        c.reply()
        c.cmd("EHLO c.example")
        assert send(c, 10_000)[0] == 250
        # 40 MiB of the 64 MiB taken: under 16 MiB + SIZE=10 MiB left.
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1M", "count=40"],
                       capture_output=True, check=True)
        # The server looks at the file system at most once a second.
        for _ in range(30):
            code, lines = c.cmd("MAIL FROM:<a@remote.example> SIZE=10485760")
            if code != 250:
                break
            c.cmd("RSET")
            time.sleep(0.2)
        assert (code, lines[0]) == (452, "452 4.3.1 Insufficient system storage"), lines
        # Not counted as a client error: the session goes on.
        assert c.cmd("NOOP")[0] == 250
        os.unlink(filler)
        for _ in range(30):
            code, lines = c.cmd("MAIL FROM:<a@remote.example> SIZE=10485760")
            if code == 250:
                break
            time.sleep(0.2)
        assert code == 250, lines
        c.cmd("RSET")
        c.cmd("QUIT")
    finally:
        p.stop()
    assert b"Insufficient system storage" in p.read_log()
