#!/usr/bin/python3
"""Opens N idle SMTP sessions to HOST:PORT and holds them open.

Used by bench/run to measure a server's memory per idle session. Each session
is a TCP connection whose 220 greeting has been read; nothing else is sent, so
the server is left waiting for the first command (RFC 5321 4.5.3.2.7 gives it
5 minutes; Postfix's smtpd_timeout is 300s, petrel's is the same).

Connections are opened in batches so that the server's listen backlog never
overflows (a dropped SYN costs a 1 s retransmit and would make the run slow,
not wrong). Once every greeting is read the script prints "ready N" on
stdout and waits until stdin closes or a line arrives, then closes everything.
It exits 1 (after printing "error ...") if any session cannot be opened or
greeted within the deadline.

usage: idle_conns.py HOST PORT [COUNT] [--batch B] [--timeout SECONDS]
"""

import argparse
import resource
import selectors
import socket
import sys
import time


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need + 64)) if hard != resource.RLIM_INFINITY \
        else max(soft, need + 64)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < need + 16:
        raise SystemExit(f"error RLIMIT_NOFILE hard limit {hard} is below {need}")


def open_batch(host, port, count, deadline):
    """Connects `count` sockets and reads the 220 greeting on each."""
    sel = selectors.DefaultSelector()
    socks = []
    pending = {}
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((host, port))
        if err not in (0, 115):  # 115: EINPROGRESS
            raise OSError(err, f"connect to {host}:{port} failed")
        socks.append(s)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(pending)} greetings not received in time")
        for key, _ in sel.select(timeout=min(left, 1.0)):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError("server closed a session before its greeting")
            buf = pending[s] + data
            # A greeting may be multi-line ("220-..."); it ends with "220 ".
            lines = buf.split(b"\r\n")
            if any(l.startswith(b"220 ") for l in lines[:-1]):
                sel.unregister(s)
                del pending[s]
            elif any(l[:3] != b"220" for l in lines[:-1]):
                raise ConnectionError(f"unexpected greeting: {buf[:80]!r}")
            else:
                pending[s] = buf
    sel.close()
    return socks


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int, nargs="?", default=1000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="deadline in seconds for opening all sessions")
    args = ap.parse_args()
    raise_nofile(args.count)

    deadline = time.monotonic() + args.timeout
    socks = []
    try:
        while len(socks) < args.count:
            n = min(args.batch, args.count - len(socks))
            socks += open_batch(args.host, args.port, n, deadline)
    except (OSError, TimeoutError, ConnectionError) as e:
        print(f"error after {len(socks)} sessions: {e}", flush=True)
        return 1

    print(f"ready {len(socks)}", flush=True)
    sys.stdin.readline()  # wait for the caller (EOF or a line)

    # No QUIT: both servers treat a lost client as an ordinary disconnect.
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
