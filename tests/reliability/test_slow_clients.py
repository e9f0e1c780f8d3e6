"""Slow clients (issue 5): many idle connections plus one good client, and a
client that trickles its message one byte a second.

Scale: 500 idle connections under make test, 5000 with PETREL_SOAK=1."""
import os
import selectors
import smtplib
import socket
import time

import pytest

from conftest import (Petrel, fmt_kib, raise_nofile, rss_kib, scale, server_option,
                      session)

IDLE = int(os.environ.get("PETREL_IDLE_CONNECTIONS") or scale(500, 5000))
TRICKLE_SECONDS = scale(10, 30)


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_idle_connections_and_one_good_client(workdir, row):
    # This process and petrel (which inherits the limit) each hold one
    # descriptor per connection.
    limit = raise_nofile(IDLE + 1024)
    n_idle = min(IDLE, limit - 512)
    assert n_idle >= 100, f"RLIMIT_NOFILE {limit}: too low"
    p = Petrel(workdir, extra_config=f"[limits]\nmax_connections = {n_idle + 100}\n"
               f"max_connections_per_ip = {n_idle + 100}\n")
    server_option(p, 'command_timeout = "4s"')
    p.start()
    pid = p.proc.pid
    rss0, fds0 = rss_kib(pid), open_fds(pid)
    idle = []
    refused = 0
    deadline = time.monotonic() + 120
    for _ in range(n_idle):
        if time.monotonic() > deadline:
            break
        try:
            idle.append(socket.create_connection((p.host, p.port), timeout=10))
        except OSError:
            refused += 1
    # petrel accepts a little behind the connects: sample its descriptors
    # until it holds them all (bounded, well inside the 4 s timeout).
    held = 0
    for _ in range(40):
        held = max(held, open_fds(pid) - fds0)
        if held >= len(idle):
            break
        time.sleep(0.05)
    rss_held = rss_kib(pid)
    # The good client, while the idle ones are held.
    good = None
    try:
        with smtplib.SMTP(p.host, p.port, timeout=60) as s:
            s.ehlo("good.example")
            s.mail("a@remote.example")
            s.rcpt("b@example.test")
            code, text = s.data(b"Subject: good client\r\n\r\nserved\r\n")
            good = (code, text.decode())
    except (OSError, smtplib.SMTPException) as e:
        good = (0, repr(e))
    # Every idle connection is ended by petrel: 421 4.4.2 then EOF (bounded).
    sel = selectors.DefaultSelector()
    got = {}
    for s in idle:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    closed, with_421 = 0, 0
    end = time.monotonic() + 120
    while got and time.monotonic() < end:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                chunk = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                chunk = b""
            if chunk:
                got[s] += chunk
                continue
            closed += 1
            with_421 += b"\r\n421 4.4.2" in got[s]
            sel.unregister(s)
            s.close()
            del got[s]
    for s in got:
        s.close()
    sel.close()
    fds_after = open_fds(pid) - fds0
    p.stop()
    per_conn = (rss_held - rss0) / max(1, held)
    row("9 slow clients", f"{n_idle} idle connections (command_timeout 4s) + 1 good client"
        + (f" (RLIMIT_NOFILE {limit}: {IDLE} wanted)" if n_idle < IDLE else ""),
        f"held by petrel {held}; refused {refused}; good client {good[0]}; idle ended "
        f"by petrel {closed}/{len(idle)} ({with_421} with 421 4.4.2); fds after {fds_after}; "
        f"RSS {fmt_kib(rss0)} -> {fmt_kib(rss_held)} ({per_conn:.1f} KiB/connection)")
    assert good[0] == 250, good
    assert closed == len(idle), f"{len(got)} idle connections never ended"
    assert with_421 == closed
    assert rss_held - rss0 < 512 * 1024


def test_trickling_client_is_cut_off(workdir, row):
    p = Petrel(workdir)
    # data_timeout well above the 1 s between octets, so a slow test machine
    # cannot make it fire by accident.
    server_option(p, 'command_timeout = "5s"\ndata_timeout = "5s"')
    p.start()
    c = session(p)
    c.cmd("MAIL FROM:<a@remote.example>")
    c.cmd("RCPT TO:<b@example.test>")
    assert c.cmd("DATA")[0] == 354
    c.sock.settimeout(1.0)
    sent, cut = 0, None
    start = time.monotonic()
    text = b"Subject: trickle\r\n\r\n" + b"x" * 1000
    for i in range(TRICKLE_SECONDS):
        try:
            c.sock.sendall(text[i:i + 1])
            sent += 1
            data = c.sock.recv(4096)
            if not data or data.startswith(b"4") or data.startswith(b"5"):
                cut = (time.monotonic() - start, data[:60])
                break
        except (socket.timeout, TimeoutError):
            continue
        except OSError as e:
            cut = (time.monotonic() - start, repr(e))
            break
    c.close()
    p.stop()
    log = p.read_log()
    row("9 slow clients", f"1 byte/s during DATA for up to {TRICKLE_SECONDS} s "
        "(data_timeout 5s, min_data_rate 500 octets/s, the default)",
        f"{sent} octets sent; " + (f"cut off after {cut[0]:.0f} s: {cut[1]!r}" if cut
                                   else "still connected: no minimum data rate"))
    assert cut is not None, "a 1 byte/s client was never cut off"
    assert cut[1].startswith(b"421 4.4.2"), cut
    assert b"data arrived slower than 500 octets/s" in log
