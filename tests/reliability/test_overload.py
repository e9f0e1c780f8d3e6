"""Overload (issue 5): measure petrel's capacity with Postfix's smtp-source,
then offer five times that load (five smtp-source runs of the measuring
size at once) for a bounded time while two good Python clients submit
messages with unique Message-IDs. Afterwards: the good clients got through,
nothing acknowledged is lost (every good queue id is in the spool and the
spool holds at least every message smtp-source counted), and petrel's
memory stayed bounded. Delivery is off: this is the receiving side.

Scale: 4 s of overload under make test, 10 s with PETREL_SOAK=1.
"""
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

from conftest import Petrel, fmt_kib, queued_id, rss_kib, scale

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SESSIONS = 20
MEASURE_MESSAGES = scale(1000, 4000)
OVERLOAD_SECONDS = scale(4, 10)
FACTOR = 5
GOOD_CLIENTS = 2


def smtp_source(p, messages, sessions=SESSIONS, tag="m"):
    return subprocess.Popen(
        [SMTP_SOURCE, "-c", "-s", str(sessions), "-m", str(messages), "-l", "1000",
         "-N", "-M", "source.example", "-f", f"{tag}@remote.example",
         "-t", "rcpt@example.test", f"127.0.0.1:{p.port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def counted(out):
    """The last value of smtp-source's -c counter (DATA commands completed)."""
    nums = re.findall(rb"(\d+)\r", out)
    return int(nums[-1]) if nums else 0


class GoodClient(threading.Thread):
    def __init__(self, p, tag, stop):
        super().__init__(daemon=True)
        self.p, self.tag, self.stop = p, tag, stop
        self.tried, self.acked, self.failed = 0, {}, []
        self.slowest = 0.0

    def run(self):
        n = 0
        while not self.stop.is_set() and n < 10_000:
            n += 1
            self.tried += 1
            mid = f"<good.{self.tag}.{n}@example.test>"
            t0 = time.monotonic()
            try:
                c = self.p.connect(timeout=60)
                code, lines = c.reply()
                if code != 220:
                    raise OSError(f"greeting {lines}")
                c.cmd("EHLO good.example")
                c.cmd("MAIL FROM:<good@remote.example>")
                c.cmd(f"RCPT TO:<good-{self.tag}-{n}@example.test>")
                if c.cmd("DATA")[0] != 354:
                    raise OSError("DATA refused")
                code, lines = c.cmd(f"Message-ID: {mid}\r\nSubject: good\r\n\r\nhello\r\n.")
                c.cmd("QUIT")
                c.close()
                if code != 250:
                    raise OSError(f"end of data {lines}")
                self.acked[mid] = queued_id(lines)
            except (OSError, EOFError, AssertionError) as e:
                self.failed.append(repr(e)[:80])
            self.slowest = max(self.slowest, time.monotonic() - t0)
            self.stop.wait(0.05)


@pytest.mark.skipif(not os.path.exists(SMTP_SOURCE),
                    reason="smtp-source not installed (scripts/deps bench)")
def test_five_times_capacity(workdir, row):
    p = Petrel(workdir, extra_config="[limits]\nmax_connections_per_ip = 1000\n").start()
    pid = p.proc.pid
    rss0 = rss_kib(pid)
    # Capacity, measured here and now.
    t0 = time.monotonic()
    m = smtp_source(p, MEASURE_MESSAGES, tag="measure")
    out, err = m.communicate(timeout=600)
    took = time.monotonic() - t0
    assert m.returncode == 0, err
    measured = counted(out)
    capacity = measured / took
    # Overload: FACTOR measuring runs at once, for OVERLOAD_SECONDS.
    stop = threading.Event()
    good = [GoodClient(p, str(i), stop) for i in range(GOOD_CLIENTS)]
    sources = [smtp_source(p, 1_000_000, tag=f"flood{i}") for i in range(FACTOR)]
    for g in good:
        g.start()
    peak = rss0
    end = time.monotonic() + OVERLOAD_SECONDS
    while time.monotonic() < end:
        peak = max(peak, rss_kib(pid))
        time.sleep(0.2)
    flood = 0
    for s in sources:
        s.send_signal(signal.SIGTERM)
    for s in sources:
        out, _ = s.communicate(timeout=60)
        flood += counted(out)
    stop.set()
    for g in good:
        g.join(120)
    rate = flood / OVERLOAD_SECONDS
    after = rss_kib(pid)
    p.stop()
    spool = p.spool_ids()
    in_spool = set(spool)
    good_acked = {mid: q for g in good for mid, q in g.acked.items()}
    good_tried = sum(g.tried for g in good)
    good_failed = [f for g in good for f in g.failed]
    lost_good = [mid for mid, q in good_acked.items() if q not in in_spool]
    acknowledged = measured + flood + len(good_acked)
    row("10 overload", f"{FACTOR}x the measured load ({FACTOR} x {SESSIONS} smtp-source "
        f"sessions) for {OVERLOAD_SECONDS} s + {GOOD_CLIENTS} good clients",
        f"capacity {capacity:.0f} msg/s; under overload {rate:.0f} msg/s acknowledged; "
        f"good clients {len(good_acked)}/{good_tried} acknowledged (slowest "
        f"{max(g.slowest for g in good):.1f} s); acknowledged {acknowledged}, in spool "
        f"{len(spool)}, lost {len(lost_good) + max(0, acknowledged - len(spool))}; "
        f"RSS {fmt_kib(rss0)} -> peak {fmt_kib(peak)} -> {fmt_kib(after)}")
    assert good_tried > 0 and len(good_acked) > 0
    assert not good_failed, good_failed[:5]
    assert not lost_good, lost_good[:5]
    assert len(spool) >= acknowledged, "acknowledged messages missing from the spool"
    assert peak - rss0 < 1024 * 1024, "memory grew by more than 1 GiB"
