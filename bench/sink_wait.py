#!/usr/bin/python3
"""Watches smtp-sink's running counters; used by bench/run's relay steps.

smtp-sink -c writes "sess=N quit=N mesg=N" followed by a carriage return
each time a session ends, a QUIT is executed or a "." (end of DATA) is
received; its stdout goes to a file that this script reads as it grows.

  sink_wait.py FILE now
      prints the current counters: "SESS MESG" (0 0 before the first line).
  sink_wait.py FILE settle [--quiet 1] [--timeout 20]
      waits until the counters have not changed for --quiet seconds, then
      prints "SESS MESG"; exit status 1 (and the counters) if they were still
      changing after --timeout seconds.
  sink_wait.py FILE wait TARGET [--timeout 60]
      waits until mesg >= TARGET and prints "done UNIXTIME SESS MESG", where
      UNIXTIME (time.time(), the same clock as `date +%s.%N`) is when the
      target was first seen; after --timeout seconds prints
      "timeout UNIXTIME SESS MESG" with the last counters and exits 1; on
      SIGTERM prints "stopped UNIXTIME SESS MESG" and exits 1.
      Polls every 5 ms, so the time is late by at most about 5 ms.
"""

import argparse
import os
import re
import signal
import sys
import time

COUNTERS = re.compile(rb"sess=(\d+) quit=\d+ mesg=(\d+)")


class Tail:
    """Reads only what was appended since the last call."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY)
        self.rest = b""
        self.sess = 0
        self.mesg = 0

    def poll(self):
        while True:
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                break
            data = self.rest + chunk
            # Complete records end in "\r"; keep a partial one for later.
            cut = max(data.rfind(b"\r"), data.rfind(b"\n"))
            if cut < 0:
                self.rest = data
                continue
            self.rest = data[cut + 1:]
            found = COUNTERS.findall(data[:cut])
            if found:
                s, m = found[-1]
                self.sess, self.mesg = int(s), int(m)
        return self.sess, self.mesg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("mode", choices=["now", "settle", "wait"])
    ap.add_argument("target", nargs="?", type=int)
    ap.add_argument("--timeout", type=float, default=None)
    ap.add_argument("--quiet", type=float, default=1.0)
    args = ap.parse_args()
    tail = Tail(args.file)

    if args.mode == "now":
        print(*tail.poll())
        return 0

    if args.mode == "settle":
        limit = time.monotonic() + (args.timeout or 20.0)
        last = tail.poll()
        since = time.monotonic()
        while True:
            time.sleep(0.05)
            cur = tail.poll()
            t = time.monotonic()
            if cur != last:
                last, since = cur, t
            elif t - since >= args.quiet:
                print(*cur)
                return 0
            if t >= limit:
                print(*cur)
                return 1

    if args.target is None:
        ap.error("wait needs TARGET")
    limit = time.monotonic() + (args.timeout or 60.0)

    def stopped(signum, frame):
        print("stopped", f"{time.time():.6f}", *tail.poll(), flush=True)
        sys.exit(1)

    signal.signal(signal.SIGTERM, stopped)
    while True:
        sess, mesg = tail.poll()
        if mesg >= args.target:
            print("done", f"{time.time():.6f}", sess, mesg)
            return 0
        if time.monotonic() >= limit:
            print("timeout", f"{time.time():.6f}", sess, mesg)
            return 1
        time.sleep(0.005)


if __name__ == "__main__":
    sys.exit(main())
