"""Fixtures that run the real petrel binary on loopback.

Every server binds 127.0.0.1 (or ::1) on a free port, with its spool and
config in a fresh temporary directory. Waits are bounded; nothing here
asserts on timing.
"""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time

import pytest

PETREL = os.environ.get("PETREL_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "src", "cli", "petrel")


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


_RUNNING = []  # every Petrel started, so a failed test cannot leak one


class Petrel:
    """One petrel server process with its own directory."""

    def __init__(self, workdir, extra_config="", local_domains=("example.test",),
                 trusted=("127.0.0.0/8", "::1/128"), listen_host="127.0.0.1"):
        self.dir = workdir
        self.host = listen_host
        self.port = free_port(listen_host)
        self.spool = os.path.join(workdir, "spool")
        self.log_path = os.path.join(workdir, "petrel.log")
        self.config_path = os.path.join(workdir, "petrel.toml")
        self.proc = None
        self.extra_config = extra_config
        self.local_domains = local_domains
        self.trusted = trusted
        self.env = {}   # added to petrel's environment at start()
        self.write_config()

    def write_config(self):
        addr = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        sections = {}
        # extra_config may override whole tables by name: split it by table.
        body = f"""
[server]
hostname = "mx.example.test"
admin_socket = "petrel.sock"

[[listener]]
address = "{addr}"
mode = "smtp"

[spool]
path = "spool"

[relay]
local_domains = {json.dumps(list(self.local_domains))}
trusted_networks = {json.dumps(list(self.trusted))}
"""
        if "[delivery]" not in self.extra_config:
            # Receiving tests look at the spool: keep what is accepted there.
            body += "\n[delivery]\nenabled = false\n"
        with open(self.config_path, "w") as f:
            f.write(body + "\n" + self.extra_config + "\n")

    def start(self):
        start_at = len(self.read_log())
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PETREL, "serve", "--config", self.config_path],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir,
            env={**os.environ, **self.env} if self.env else None)
        _RUNNING.append(self)
        wait_for(lambda: self.proc.poll() is not None or b"ready" in self.read_log()[start_at:],
                 what="petrel to log ready")
        if self.proc.poll() is not None:
            raise AssertionError("petrel exited at start:\n" + self.read_log().decode(errors="replace"))
        return self

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self.log.close()
        return rc

    def kill9(self):
        return self.stop(signal.SIGKILL)

    def cli(self, *args, check=True):
        r = subprocess.run([PETREL, *args, "--config", self.config_path],
                           capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError(f"petrel {args} failed: {r.stdout}{r.stderr}")
        return r

    def spool_ids(self):
        """IDs in the spool, read offline (the server must be stopped)."""
        r = self.cli("spool", "list", "--json")
        return [m["id"] for m in json.loads(r.stdout)]

    def spool_messages(self):
        r = self.cli("spool", "list", "--json")
        return json.loads(r.stdout)

    def spool_content(self, qid):
        r = subprocess.run([PETREL, "spool", "cat", qid, "--config", self.config_path],
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def connect(self, timeout=30):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        return SmtpConn(s)


class SmtpConn:
    """A raw SMTP client: send exact bytes, read whole replies."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """Reads one complete reply; returns (code, [lines])."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("connection closed; got " + repr(self.buf))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) < 4 or line[3:4] == b" ":
                return int(line[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply()

    def closed(self):
        """True if the server has closed the connection (reads to EOF)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


@pytest.fixture(autouse=True)
def no_leaked_servers():
    yield
    while _RUNNING:
        p = _RUNNING.pop()
        if p.proc is not None:
            p.stop(signal.SIGKILL)


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="petrel-test-") as d:
        yield d


@pytest.fixture
def petrel(workdir):
    p = Petrel(workdir).start()
    yield p
    p.stop()


def queued_id(reply_lines):
    m = re.search(r"queued as ([0-9A-Z]{16})", reply_lines[-1])
    assert m, reply_lines
    return m.group(1)
