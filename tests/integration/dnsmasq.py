"""A real dnsmasq on 127.0.0.1 and a free port, serving the records a test
gives it, for petrel's [dns] servers.

    from dnsmasq import Dnsmasq, mx, host, null_mx

    with Dnsmasq(mx("example.net", "mx1.example.net", 10),
                 mx("example.net", "mx2.example.net", 20),
                 host("mx1.example.net", "127.0.0.1"),
                 null_mx("nomail.example.net")) as dns:
        config = dns.toml()          # '[dns]\\nservers = ["127.0.0.1:N"]'

Records are dnsmasq options; the helpers below build the usual ones, and any
other option string ("--txt-record=...") passes through. Every zone (last
label) named in a record is made local, so other names in it get NXDOMAIN;
names outside those zones get REFUSED (there is no upstream), which petrel
treats as a transient failure. Pass local_zones=() to turn this off.

A domain with only host() records and no mx() has no MX: the implicit MX
case. A name served nowhere in a local zone is NXDOMAIN.

The process is killed by stop(), by leaving the with-block, at interpreter
exit, and by the kernel if the test process dies (PR_SET_PDEATHSIG: that
is tied to the thread that started it, so start it from the main thread).
Use Dnsmasq.available() to skip when dnsmasq is not installed.
"""
import atexit
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

_RUNNING = []
_DIRS = []  # log directories, removed at exit so that stop() keeps the log


def mx(domain, target, preference=10):
    """MX preference target (RFC 5321 5.1)."""
    return f"--mx-host={domain},{target},{preference}"


def null_mx(domain):
    """RFC 7505 "MX 0 .": the domain accepts no mail."""
    return f"--mx-host={domain},.,0"


def host(name, *addresses):
    """A and/or AAAA records ("127.0.0.1", "::1")."""
    if not addresses:
        raise ValueError("host() needs at least one address")
    return f"--host-record={name},{','.join(addresses)}"


def cname(alias, target):
    """CNAME alias -> target (target must be served by this dnsmasq)."""
    return f"--cname={alias},{target}"


def raw(name, rr_type, rdata_hex=""):
    """Any record, RDATA as hex: raw("x.test", 15, "000000") is a null MX."""
    return f"--dns-rr={name},{rr_type},{rdata_hex}"


def _record_name(option):
    value = option.split("=", 1)[1] if "=" in option else ""
    if option.startswith(("--address=", "--local=", "--server=")):
        return None
    return value.split(",", 1)[0] or None


def _free_port():
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port on 127.0.0.1")


def _die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Dnsmasq:
    """One dnsmasq process; start() (or the constructor with start=True)."""

    BINARY_CANDIDATES = ("/usr/sbin/dnsmasq", "/usr/bin/dnsmasq")

    @classmethod
    def binary(cls):
        for path in cls.BINARY_CANDIDATES:
            if os.access(path, os.X_OK):
                return path
        return shutil.which("dnsmasq")

    @classmethod
    def available(cls):
        return cls.binary() is not None

    def __init__(self, *records, local_zones=None, log_queries=True,
                 start=True):
        self.records = list(records)
        if local_zones is None:
            names = filter(None, (_record_name(r) for r in self.records))
            local_zones = sorted({n.rstrip(".").rsplit(".", 1)[-1].lower()
                                  for n in names})
        self.local_zones = list(local_zones)
        self.log_queries = log_queries
        self.port = None
        self.proc = None
        self._dir = tempfile.mkdtemp(prefix="petrel-dnsmasq-")
        _DIRS.append(self._dir)
        self.log_path = os.path.join(self._dir, "dnsmasq.log")
        if start:
            self.start()

    @property
    def server(self):
        """The value for petrel's [dns] servers: "127.0.0.1:PORT"."""
        return f"127.0.0.1:{self.port}"

    def toml(self):
        return f'[dns]\nservers = ["{self.server}"]\n'

    def args(self):
        args = [self.binary(), "--no-daemon", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--pid-file=",
                f"--port={self.port}", "--listen-address=127.0.0.1",
                "--bind-interfaces"]
        if self.log_queries:
            args.append("--log-queries")
        args += [f"--local=/{zone}/" for zone in self.local_zones]
        return args + self.records

    def start(self, timeout=10.0):
        if self.proc is not None:
            return self
        binary = self.binary()
        if binary is None:
            raise RuntimeError("dnsmasq is not installed (scripts/deps)")
        for _ in range(5):  # another process may take the port meanwhile
            self.port = _free_port()
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(
                self.args(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
            log.close()
            _RUNNING.append(self)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port),
                                             timeout=1).close()
                    return self
                except OSError:
                    time.sleep(0.02)
            self.stop()
        raise RuntimeError("dnsmasq did not start:\n" + self.log())

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None
        if self in _RUNNING:
            _RUNNING.remove(self)

    def log(self):
        """dnsmasq's output: with log_queries, one line per query."""
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def query(self, name, rr_type=15, timeout=2.0):
        """One UDP query; returns (rcode, answer count). For self-checks."""
        labels = [l for l in name.rstrip(".").split(".") if l]
        qname = b"".join(bytes([len(l)]) + l.encode() for l in labels)
        packet = (struct.pack(">HHHHHH", 0x5e7a, 0x0100, 1, 0, 0, 0) +
                  qname + b"\0" + struct.pack(">HH", rr_type, 1))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(packet, ("127.0.0.1", self.port))
            reply = s.recv(65535)
        flags, _, ancount = struct.unpack(">HHH", reply[2:8])
        return flags & 0xF, ancount

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@atexit.register
def _stop_all():
    for d in list(_RUNNING):
        d.stop()
    for path in _DIRS:
        shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    # Self-check: python3 tests/integration/dnsmasq.py
    NOERROR, NXDOMAIN, REFUSED = 0, 3, 5
    with Dnsmasq(mx("example.net", "mx1.example.net", 10),
                 host("mx1.example.net", "127.0.0.1", "::1"),
                 host("implicit.example.net", "127.0.0.1"),
                 null_mx("nomail.example.net")) as dns:
        assert dns.query("example.net", 15) == (NOERROR, 1)
        assert dns.query("mx1.example.net", 1) == (NOERROR, 1)
        assert dns.query("mx1.example.net", 28) == (NOERROR, 1)
        assert dns.query("implicit.example.net", 15) == (NOERROR, 0)
        assert dns.query("nomail.example.net", 15) == (NOERROR, 1)
        assert dns.query("nosuch.example.net", 15)[0] == NXDOMAIN
        assert dns.query("example.org", 15)[0] == REFUSED
        print("ok", dns.server, dns.local_zones)
