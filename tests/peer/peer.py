#!/usr/bin/python3
"""A scripted, misbehaving SMTP server for petrel's delivery tests.

What it is: the receiving MTA that petrel's SMTP client talks to in tests.
It accepts mail like an ordinary server, or misbehaves in one of the ways
real servers have (the seeds in /work/shared/seeds/): refusing recipients
past a limit with 452, 552 or 522; a multiline 354 with a pause between its
lines; a multiline final reply written one byte at a time; 421 in the middle
of a transaction; closing after the end of data without replying (the RFC
1047 window); greylisting; unknown users; no EHLO; a slow final reply; no
PIPELINING. It records everything it receives and counts, per recipient,
how many times it answered 250 to the end of data of a transaction that
contained it ("delivered"), so tests can assert exactly-once delivery.

Use it in-process:

    from peer import Peer
    with Peer("rcpt_limit", limit=100, code=552, state_path=p) as peer:
        ... peer.port ... peer.stats()["delivered"]["bob@example.net"] ...

or as a separate process (PeerProcess below runs exactly this):

    /usr/bin/python3 tests/peer/peer.py --port 0 --script rcpt_limit \
        --limit 100 --code 552 --state /tmp/x/peer.json

The CLI prints "port N" as its first line on stdout, then runs until
SIGTERM/SIGINT or --max-seconds (default 600), and exits 0.

State: a JSON file (schema in Peer.stats()) rewritten atomically (temporary
file + rename) after every transaction, at every connection's end and on
exit. Message bodies go to files beside it (STATE.d/txn-0001.eml is the
content after un-dot-stuffing, txn-0001.raw the data as received including
the final ".\\r\\n"; conn-0001.in everything received on a connection).

Limits and safety: binds loopback only (127.0.0.0/8 or ::1; anything else is
a ValueError). Every loop is bounded: per-connection idle timeout, a cap on
commands per connection and on concurrent connections, a cap on the total
run time. Reply lines are at most 512 octets including CRLF (RFC 5321
4.5.3.1.5); longer reply text is truncated. Python standard library only;
one thread per connection; thread-safe accounting under one lock.

Standards: RFC 5321 (SMTP), 1870 (SIZE), 2920 (PIPELINING), 3030
(CHUNKING/BDAT), 3461 (DSN parameters), 6152 (8BITMIME), 6531 (SMTPUTF8),
2034 (ENHANCEDSTATUSCODES), 9422 (LIMITS).
"""
import argparse
import base64
import dataclasses
import hashlib
import ipaddress
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback

__all__ = ["Options", "Peer", "PeerProcess", "SCENARIOS", "read_state", "main"]

MAX_REPLY_LINE = 512          # octets including CRLF, RFC 5321 4.5.3.1.5
MAX_COMMAND_LINE = 512        # octets including CRLF, RFC 5321 4.5.3.1.4
MAX_BUFFERED_LINE = 65536     # a "line" longer than this is read and discarded
MAX_DIALOG = 20000            # dialog entries kept per connection
MAX_COMMANDS = 100000         # commands per connection, then 421 and close
ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


@dataclasses.dataclass
class Options:
    """Every behaviour the peer has. A scenario is a set of defaults for
    these; keyword arguments (in-process) or --flags (CLI, the field name
    with dashes) override them."""

    hostname: str = "peer.example.net"   # greeting, EHLO, queue ids
    # Extensions advertised in the EHLO reply (and enforced: a parameter of an
    # extension not advertised is answered 555 and recorded as a violation).
    ehlo: bool = True           # False: EHLO -> "500 5.5.1 Command unrecognized"
    pipelining: bool = True
    size: int = 52428800        # SIZE N; 0: not advertised, no limit enforced
    eightbitmime: bool = True
    smtputf8: bool = True
    dsn: bool = True
    enhancedstatuscodes: bool = True
    chunking: bool = False      # CHUNKING: BDAT is received
    rcptmax: int = 0            # LIMITS RCPTMAX=N, enforced with 452 4.5.3
    # Recipients.
    limit: int = 0              # after N accepted in a transaction, each
    code: int = 452             # further RCPT gets CODE (452, 552 or 522)
    limit_reply: str = ""       # the whole reply; empty: the usual text for CODE
    reject: list = dataclasses.field(default_factory=list)   # local-parts: 550 5.1.1
    reject_regex: str = ""      # re.search on the address: 550 5.1.1
    greylist: int = 0           # first N attempts per recipient: 451 4.7.1
    # Replies.
    lines_354: list = dataclasses.field(
        default_factory=lambda: ["354 End data with <CR><LF>.<CR><LF>"])
    pause: float = 0.0          # seconds between the lines of the 354 reply
    final_lines: list = dataclasses.field(default_factory=list)  # "{id}" is the queue id
    byte_delay: float = 0.0     # > 0: the final reply is sent one byte per send
    split_all: bool = False     # with byte_delay: every reply is sent so
    delay: float = 0.0          # seconds before the final reply to the data
    # One injected fault: at "greeting" | "mail" | "rcpt" | "data" | "dot".
    # For rcpt, the Nth RCPT of a transaction; otherwise the Nth such event
    # since the peer started. It fires `times` times (0: always), then the
    # peer behaves normally. fault: "421" (421 4.3.0, then close), "close"
    # (close without a reply), "garbage" (a line that is not a reply, then
    # close) or a reply line to send instead (the session goes on).
    at: str = ""
    fault: str = "421"
    nth: int = 1
    times: int = 1
    # Synchronisation checks (RFC 2920): before replying to a command that
    # must end a group (every command without PIPELINING), wait this long
    # and record a violation if the client has sent more.
    sync_wait: float = 0.0
    strict_sync: bool = False   # on a violation: "554 5.5.0 SMTP synchronization error", close
    # Bounds.
    max_seconds: float = 600.0  # the peer stops itself after this long
    idle_timeout: float = 120.0  # per connection, then 421 4.4.2 and close
    max_connections: int = 64   # concurrent; more get 421 4.7.0
    # TLS (RFC 3207): with a certificate and key, STARTTLS is advertised.
    # tls_mode: "ok"; "broken" (220, then garbage instead of a handshake,
    # then close); "inject" (220 and a forged "250" in the same segment,
    # before the handshake: CVE-2011-0411 on the client side).
    tls_cert: str = ""
    tls_key: str = ""
    tls_mode: str = "ok"
    # AUTH (RFC 4954): with a user, AUTH PLAIN LOGIN is advertised inside
    # TLS; the password must match; mail before AUTH gets 530 5.7.0.
    auth_user: str = ""
    auth_password: str = ""


_LIMIT_REPLIES = {
    452: "452 4.5.3 Too many recipients",
    552: "552 5.5.3 Too many recipients",
    522: "522 Too many recipients",
}

# name -> (description, defaults). Add a scenario by adding a line.
SCENARIOS = {
    "accept": ("an ordinary server with PIPELINING, SIZE, 8BITMIME, SMTPUTF8, "
               "DSN, ENHANCEDSTATUSCODES (CHUNKING with --chunking)", {}),
    "chunking": ("accept, and CHUNKING advertised: BDAT is received",
                 {"chunking": True}),
    "rcpt_limit": ("after --limit N accepted recipients in a transaction, "
                   "--code 452|552|522 to each further RCPT",
                   {"limit": 100, "code": 452}),
    "limits_rcptmax": ("advertises LIMITS RCPTMAX=N (--rcptmax, default 10), "
                       "enforced with 452 4.5.3", {"rcptmax": 10}),
    "multiline_354": ("DATA is answered 354-Line 1, a --pause, then 354 Send "
                      "message", {"lines_354": ["354-Line 1", "354 Send message"],
                                  "pause": 2.0}),
    "split_final": ("the final reply to the data is multiline and written one "
                    "byte per send, --byte-delay apart",
                    {"final_lines": ["250-Ok", "250-queued", "250 as {id}"],
                     "byte_delay": 0.02}),
    "drop_421_mid": ("421 4.3.0 to the --nth RCPT (or --at data), then close; "
                     "--times 1", {"at": "rcpt", "nth": 2, "fault": "421"}),
    "close_after_dot": ("reads the whole message and its final dot, then "
                        "closes without replying; --times 1",
                        {"at": "dot", "fault": "close"}),
    "greylist": ("the first --greylist N attempts per recipient get 451 4.7.1",
                 {"greylist": 1}),
    "reject_some": ("550 5.1.1 to the local-parts in --reject (or matching "
                    "--reject-regex)", {"reject": ["unknown", "nobody"]}),
    "no_ehlo": ("EHLO is 500 5.5.1 Command unrecognized; HELO works; no "
                "extensions", {"ehlo": False}),
    "slow_accept": ("sleeps --delay S before the final 250", {"delay": 2.0}),
    "no_pipelining": ("PIPELINING not advertised and enforced: a command "
                      "sent before the previous reply is a violation",
                      {"pipelining": False, "sync_wait": 0.01}),
    "tempfail_data": ("451 4.3.0 to the end of data --times times",
                      {"at": "dot", "fault": "451 4.3.0 Temporary failure, try again later"}),
    "reject_data": ("554 5.7.1 to the end of data, always",
                    {"at": "dot", "fault": "554 5.7.1 Message content rejected",
                     "times": 0}),
    "greeting_421": ("421 instead of the greeting --times times, then close",
                     {"at": "greeting", "fault": "421"}),
    "garbage_reply": ("a line that is not an SMTP reply to the --nth RCPT "
                      "(or --at), then close", {"at": "rcpt", "fault": "garbage"}),
}


class _Closed(Exception):
    """The connection ended; the argument says how."""


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _text(b):
    return b.decode("utf-8", "backslashreplace")


def _parse_path(rest):
    """Splits "<path> params" (after "MAIL FROM:" or "RCPT TO:").
    Returns (address_without_brackets, [params], bracketed) or None."""
    rest = rest.lstrip(" ")
    if rest.startswith("<"):
        i, quoted = 1, False
        while i < len(rest):
            c = rest[i]
            if c == "\\" and quoted:
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == ">" and not quoted:
                addr = rest[1:i]
                tail = rest[i + 1:]
                if tail and not tail.startswith(" "):
                    return None
                return addr, tail.split(), True
            i += 1
        return None
    parts = rest.split()
    if not parts:
        return None
    return parts[0], parts[1:], False


def _header(content, name):
    """The unfolded value of the first header `name` in the header section."""
    end = content.find(b"\r\n\r\n")
    head = content if end < 0 else content[:end]
    lines = head.split(b"\r\n")
    want = name.lower().encode() + b":"
    for i, line in enumerate(lines):
        if line.lower().startswith(want):
            value = line[len(want):]
            for cont in lines[i + 1:]:
                if cont[:1] in (b" ", b"\t"):
                    value += b" " + cont.strip()
                else:
                    break
            return _text(value.strip())
    return None


def _unstuff(raw_message):
    """RFC 5321 4.5.2: removes the first dot of every line that starts with
    one. raw_message ends with CRLF (or is empty)."""
    lines = raw_message.split(b"\r\n")
    return b"\r\n".join(l[1:] if l.startswith(b".") else l for l in lines)


class _Txn:
    """One mail transaction: from an accepted MAIL to its end."""

    def __init__(self, tid, conn_id, mail_from, mail_params):
        self.id = tid
        self.connection = conn_id
        self.mail_from = mail_from
        self.mail_params = mail_params
        self.rcpt_commands = 0           # RCPT commands in this transaction
        self.rcpts_attempted = []
        self.rcpts_accepted = []
        self.rcpt_params = {}
        self.rcpt_replies = []           # [address, reply]
        self.limit_refusals = 0
        self.method = None               # "DATA" | "BDAT"
        self.bdat_chunks = []            # sizes
        self.raw = None
        self.content = None
        self.oversize = False
        self.bare_lf = False
        self.outcome = "open"
        self.final_reply = None
        self.started = time.time()
        self.ended = None

    def to_json(self, files):
        d = {
            "id": self.id, "connection": self.connection,
            "mail_from": self.mail_from, "mail_params": self.mail_params,
            "rcpts_attempted": self.rcpts_attempted,
            "rcpts_accepted": self.rcpts_accepted,
            "rcpt_params": self.rcpt_params, "rcpt_replies": self.rcpt_replies,
            "limit_refusals": self.limit_refusals,
            "method": self.method, "bdat_chunks": self.bdat_chunks,
            "outcome": self.outcome, "final_reply": self.final_reply,
            "oversize": self.oversize, "bare_lf": self.bare_lf,
            "started": self.started, "ended": self.ended,
        }
        if self.content is not None:
            d["size"] = len(self.content)
            d["raw_size"] = len(self.raw)
            d["sha256"] = hashlib.sha256(self.content).hexdigest()
            d["message_id"] = _header(self.content, "Message-ID")
            d["subject"] = _header(self.content, "Subject")
        if files:
            d.update(files)
        return d



def wait_for_stats(stats, predicate, timeout, what, dead=None):
    """Polls predicate(stats()) until true; AssertionError after `timeout`
    seconds, or at once if dead() names a reason the peer is gone."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = stats()
        if predicate(s):
            return s
        if dead is not None and (why := dead()):
            raise AssertionError(f"{why} while waiting for {what}")
        time.sleep(0.02)
    raise AssertionError(f"peer: timed out waiting for {what}")

class Peer:
    """The scripted SMTP server, in-process. Thread-safe.

    Peer(scenario="accept", host="127.0.0.1", port=0, state_path=None,
         messages_dir=None, **options) -- options are Options fields.
    start() binds and returns self; .port is then the bound port; stop()
    closes everything and writes the final state; stats() returns the state
    as a dict; usable as a context manager.
    """

    def __init__(self, scenario="accept", host="127.0.0.1", port=0,
                 state_path=None, messages_dir=None, **options):
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: "
                             + ", ".join(sorted(SCENARIOS)))
        if not _is_loopback(host):
            raise ValueError(f"the peer binds loopback only, not {host!r}")
        opts = Options()
        merged = dict(SCENARIOS[scenario][1])
        if "at" in options and "nth" not in options:
            merged.pop("nth", None)   # a scenario's Nth RCPT is not the Nth DATA
        merged.update(options)
        names = {f.name for f in dataclasses.fields(Options)}
        for k, v in merged.items():
            if k not in names:
                raise ValueError(f"unknown option {k!r}")
            setattr(opts, k, v)
        if opts.at not in ("", "greeting", "mail", "rcpt", "data", "dot"):
            raise ValueError(f"--at must be greeting|mail|rcpt|data|dot, not {opts.at!r}")
        self.scenario = scenario
        self.options = opts
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.state_path = state_path
        if messages_dir is None and state_path:
            messages_dir = state_path + ".d"
        self.messages_dir = messages_dir
        self._reject_re = re.compile(opts.reject_regex) if opts.reject_regex else None
        self._reject = {r.lower() for r in opts.reject}
        self._lock = threading.RLock()
        self._state_lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = None
        self._thread = None
        self._conns = {}                  # id -> _Conn (live)
        self._conn_records = []           # every connection's record dict
        self._txns = []                   # every _Txn
        self._txn_files = {}              # txn id -> {"content_file":..., "raw_file":...}
        self._delivered = {}
        self._received = {}
        self._rcpt_attempts = {}
        self._greylist_seen = {}
        self._violations = []
        self._errors = []
        self._fault_events = {}           # at -> events seen (global)
        self._faults_fired = 0
        self._next_conn = 0
        self._next_txn = 0
        self._started = None
        self._deadline = None
        self._running = False

    # ---- lifecycle -------------------------------------------------------

    def start(self):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        s.settimeout(0.1)
        self._listener = s
        self.port = s.getsockname()[1]
        self._started = time.time()
        self._deadline = time.monotonic() + self.options.max_seconds
        self._running = True
        if self.messages_dir:
            os.makedirs(self.messages_dir, exist_ok=True)
        self._write_state()
        self._thread = threading.Thread(target=self._accept_loop,
                                        name=f"peer-accept-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout=10.0):
        """Stops listening, closes every connection, writes the final state.
        Idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            c.abort()
        end = time.monotonic() + timeout
        for c in conns:
            c.thread.join(max(0.0, end - time.monotonic()))
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self._running = False
        self._write_state()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def wait_stopped(self, timeout=None):
        """Blocks until stop() was called or the max-seconds cap passed."""
        return self._stop.wait(timeout)

    # ---- queries ---------------------------------------------------------

    def stats(self):
        """The state as a dict (also what the state file holds):
        scenario, options, host, port, pid, running, started, updated;
        connection_count, connections [{id, client, helo, esmtp, commands,
        dialog, closed_by, transactions, received_octets}];
        transaction_count, delivered_transactions, transactions [{id,
        connection, mail_from, mail_params, rcpts_attempted, rcpts_accepted,
        rcpt_params, rcpt_replies, limit_refusals, method, bdat_chunks,
        outcome (open|delivered|rejected|no_reply|aborted|dropped|
        data_refused|reply_failed), final_reply, size, raw_size, sha256,
        message_id, subject, content_file, raw_file}];
        delivered {rcpt: n} (250 to the end of data), received {rcpt: n}
        (whole message received, answered or not), rcpt_attempts {rcpt: n},
        limit_refusals, faults_fired, violations [{connection, kind,
        detail}], errors."""
        with self._lock:
            conns = [dict(c) for c in self._conn_records]
            for c in conns:
                c["commands"] = list(c["commands"])
                c["dialog"] = list(c["dialog"])
                c["transactions"] = list(c["transactions"])
            txns = [t.to_json(self._txn_files.get(t.id)) for t in self._txns]
            return {
                "version": 1,
                "scenario": self.scenario,
                "options": dataclasses.asdict(self.options),
                "host": self.host, "port": self.port, "pid": os.getpid(),
                "running": self._running,
                "started": self._started, "updated": time.time(),
                "connection_count": len(conns),
                "connections": conns,
                "transaction_count": len(txns),
                "delivered_transactions": sum(t["outcome"] == "delivered" for t in txns),
                "transactions": txns,
                "delivered": dict(self._delivered),
                "received": dict(self._received),
                "rcpt_attempts": dict(self._rcpt_attempts),
                "limit_refusals": sum(t["limit_refusals"] for t in txns),
                "faults_fired": self._faults_fired,
                "violations": list(self._violations),
                "errors": list(self._errors),
            }

    def delivered(self, rcpt):
        with self._lock:
            return self._delivered.get(rcpt, 0)

    def messages(self):
        """The content (un-dot-stuffed bytes) of every transaction that
        received a whole message, in order."""
        with self._lock:
            return [t.content for t in self._txns if t.content is not None]

    def wait_for(self, predicate, timeout=30.0, what="condition"):
        """Polls predicate(stats()) until true; AssertionError after timeout."""
        return wait_for_stats(self.stats, predicate, timeout, what)

    # ---- internals -------------------------------------------------------

    def _accept_loop(self):
        try:
            while not self._stop.is_set():
                if time.monotonic() > self._deadline:
                    self._error("max-seconds reached; stopping")
                    self._stop.set()
                    break
                try:
                    sock, addr = self._listener.accept()
                except socket.timeout:
                    continue
                except OSError:
                    break
                with self._lock:
                    busy = len(self._conns) >= self.options.max_connections
                if busy:
                    try:
                        sock.sendall(b"421 4.7.0 Too many connections\r\n")
                    except OSError:
                        pass
                    sock.close()
                    continue
                conn = _Conn(self, sock, addr)
                conn.thread.start()
        except Exception:  # a bug in the peer: record it, never hang
            self._error(traceback.format_exc())
            self._stop.set()

    def _error(self, text):
        with self._lock:
            self._errors.append(text)

    def _violation(self, conn_id, kind, detail):
        with self._lock:
            self._violations.append({"connection": conn_id, "kind": kind,
                                     "detail": detail})

    def _fault_fires(self, at, txn=None):
        """True if the configured fault fires at this event."""
        o = self.options
        if o.at != at:
            return False
        with self._lock:
            if at == "rcpt":   # the Nth RCPT of a transaction
                n = txn.rcpt_commands
                if n != o.nth:
                    return False
            else:              # the Nth event since start, and later ones
                n = self._fault_events[at] = self._fault_events.get(at, 0) + 1
                if n < o.nth:
                    return False
            if o.times and self._faults_fired >= o.times:
                return False
            self._faults_fired += 1
            return True

    def _write_state(self):
        if not self.state_path:
            return
        with self._state_lock:   # snapshot and write in order
            data = json.dumps(self.stats(), indent=1, sort_keys=True)
            tmp = f"{self.state_path}.tmp"
            with open(tmp, "w") as f:
                f.write(data)
                f.flush()
            os.replace(tmp, self.state_path)

    def _save_message(self, txn):
        if not self.messages_dir:
            return
        base = os.path.join(self.messages_dir, f"txn-{txn.id:04d}")
        with open(base + ".eml", "wb") as f:
            f.write(txn.content)
        with open(base + ".raw", "wb") as f:
            f.write(txn.raw)
        with self._lock:
            self._txn_files[txn.id] = {"content_file": base + ".eml",
                                       "raw_file": base + ".raw"}


class _Conn:
    """One SMTP session, on its own thread."""

    def __init__(self, peer, sock, addr):
        self.peer = peer
        self.o = peer.options
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        with peer._lock:
            peer._next_conn += 1
            self.id = peer._next_conn
            self.rec = {"id": self.id, "client": f"{addr[0]}:{addr[1]}",
                        "helo": None, "esmtp": False, "commands": [],
                        "dialog": [], "closed_by": None, "transactions": [],
                        "received_octets": 0, "started": time.time()}
            peer._conn_records.append(self.rec)
            peer._conns[self.id] = self
        self.in_file = None
        if peer.messages_dir:
            self.in_file = open(os.path.join(peer.messages_dir,
                                             f"conn-{self.id:04d}.in"), "wb")
        self.tls = False
        self.auth = None
        self.greeted = False       # HELO or EHLO done
        self.esmtp = False
        self.txn = None
        self.bdat_open = False
        self.last_activity = time.monotonic()
        self.thread = threading.Thread(target=self.run, daemon=True,
                                       name=f"peer-conn-{self.id}")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        sock.settimeout(0.1)

    # ---- plumbing --------------------------------------------------------

    def abort(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _log(self, who, text):
        d = self.rec["dialog"]
        with self.peer._lock:
            if len(d) < MAX_DIALOG:
                d.append(f"{who}: {text}")
            elif len(d) == MAX_DIALOG:
                d.append("... (dialog truncated)")

    def _fill(self):
        """Reads more bytes into buf; raises _Closed on EOF, idle timeout,
        stop or the max-seconds cap."""
        idle_end = time.monotonic() + self.o.idle_timeout
        while True:
            if self.eof:
                raise _Closed("eof")
            if self.peer._stop.is_set():
                raise _Closed("stop")
            now = time.monotonic()
            if now > idle_end or now > self.peer._deadline:
                self._send_line("421 4.4.2 Idle timeout, closing connection")
                raise _Closed("timeout")
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                raise _Closed("reset")
            self._got(data)
            if data:
                return

    def _got(self, data):
        if not data:
            self.eof = True
            return
        self.buf += data
        with self.peer._lock:
            self.rec["received_octets"] += len(data)
        if self.in_file:
            self.in_file.write(data)

    def _pending(self, wait=0.0):
        """True if the client has sent bytes not yet consumed (waits up to
        `wait` seconds for them)."""
        if self.buf:
            return True
        if self.eof:
            return False
        try:
            # TLS may hold decrypted bytes that select() cannot see.
            buffered = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            r = buffered or select.select([self.sock], [], [], wait)[0]
            if r:
                self._got(self.sock.recv(65536))
        except (OSError, socket.timeout):
            return False
        return bool(self.buf)

    def _readline(self):
        """One line without its terminator, or None if it was over-long (read
        to its end and discarded). A bare LF ends a line too (recorded)."""
        too_long = False
        for _ in range(1 << 30):  # bounded by _fill's timeouts
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                else:
                    self.peer._violation(self.id, "bare_lf_in_command", _text(line[:100]))
                if too_long or len(line) + 2 > MAX_COMMAND_LINE:
                    self.peer._violation(self.id, "long_command", f"{len(line)} octets")
                    return None
                return line
            if len(self.buf) > MAX_BUFFERED_LINE:
                too_long = True
                del self.buf[:]
            self._fill()
        raise _Closed("loop")

    def _read_exact(self, n, keep_limit):
        """Reads n octets; keeps at most keep_limit of them."""
        out = bytearray()
        left = n
        while left > 0:
            if not self.buf:
                self._fill()
            take = min(left, len(self.buf))
            if len(out) < keep_limit:
                out += self.buf[:min(take, keep_limit - len(out))]
            del self.buf[:take]
            left -= take
        return bytes(out), n > keep_limit

    def _read_data(self):
        """Reads message data up to and including CRLF.CRLF (RFC 5321
        4.1.1.4). Returns (raw, message_before_unstuffing, oversize,
        bare_lf). Bytes after the terminator stay in buf (pipelined)."""
        limit = self.o.size if self.o.size else 1 << 30
        scan = bytearray(b"\r\n")    # the CRLF that ended the DATA line
        oversize = False
        start = 0
        while True:
            scan += self.buf
            del self.buf[:]
            i = scan.find(b"\r\n.\r\n", start)
            if i >= 0:
                rest = bytes(scan[i + 5:])
                self.buf[:0] = rest
                message = bytes(scan[2:i + 2])
                raw = message + b".\r\n"
                bare = bool(re.search(rb"(?<!\r)\n|\r(?!\n)", message))
                return raw, message, oversize, bare
            start = max(0, len(scan) - 4)
            if len(scan) - 2 > limit + 65536:
                # Over the limit: keep the head (for the record) and the tail
                # (to find the terminator); drop the middle.
                oversize = True
                keep = bytes(scan[:4096]) + bytes(scan[-4:])
                scan = bytearray(keep)
                start = len(scan) - 4
            self._fill()

    def _send_bytes(self, data, byte_delay, sync_kind=None):
        """Sends data one byte per send, byte_delay apart. If sync_kind is
        set, checks before the last byte that the client has not sent
        anything (it cannot yet have a complete reply)."""
        for i in range(len(data)):
            if self.peer._stop.wait(byte_delay if i else 0):
                raise _Closed("stop")
            if sync_kind is not None and i == len(data) - 1:
                self._sync_check(sync_kind, "before the last byte of the reply")
            self._sendall(data[i:i + 1])

    def _sendall(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            raise _Closed("reset")

    def _fit(self, line):
        b = line.encode("utf-8", "replace")
        if len(b) + 2 > MAX_REPLY_LINE:
            b = b[:MAX_REPLY_LINE - 2]
        return b + b"\r\n"

    def _send_line(self, line):
        self._log("S", line)
        try:
            self.sock.sendall(self._fit(line))
        except OSError:
            pass

    def _r(self, code, enh, text):
        """A reply line: the enhanced status code only in an EHLO session
        with ENHANCEDSTATUSCODES (RFC 2034)."""
        if enh and self.esmtp and self.o.enhancedstatuscodes:
            return f"{code} {enh} {text}"
        return f"{code} {text}"

    def _fixed(self, line):
        """A reply given in full (e.g. "452 4.5.3 Too many recipients"):
        drops its enhanced code where it may not be sent."""
        parts = line.split(" ", 2)
        if (len(parts) >= 2 and ENHANCED.match(parts[1])
                and not (self.esmtp and self.o.enhancedstatuscodes)):
            return parts[0] + (" " + parts[2] if len(parts) == 3 else "")
        return line

    def _reply(self, lines, sync_kind=None, byte_delay=None, pauses=0.0):
        """Sends a reply (one or more lines). With sync_kind, first checks
        that the client waited for it (RFC 2920 group ends)."""
        if isinstance(lines, str):
            lines = [lines]
        if byte_delay is None:
            byte_delay = self.o.byte_delay if self.o.split_all else 0.0
        if sync_kind is not None:
            if self._sync_check(sync_kind, "before the reply"):
                if self.o.strict_sync:
                    self._send_line("554 5.5.0 SMTP synchronization error")
                    raise _Closed("sync")
        for i, line in enumerate(lines):
            self._log("S", line)
            data = self._fit(line)
            last = i == len(lines) - 1
            if i and pauses:
                if self.peer._stop.wait(pauses):
                    raise _Closed("stop")
                if sync_kind is not None and last:
                    self._sync_check(sync_kind, "during a multiline reply")
            if byte_delay > 0:
                self._send_bytes(data, byte_delay, sync_kind if last else None)
            else:
                self._sendall(data)

    def _sync_check(self, kind, when):
        if self._pending(self.o.sync_wait):
            self.peer._violation(self.id, kind,
                                 f"client sent {_text(bytes(self.buf[:80]))!r} {when}")
            return True
        return False

    def _group_end(self, verb):
        """The violation kind if this command must be the last of a group
        (RFC 2920 3.1), else None."""
        if not (self.esmtp and self.o.pipelining):
            return "unsynchronized"
        if verb in ("EHLO", "HELO", "DATA", "QUIT", "NOOP", "VRFY", "EXPN",
                    "HELP", "STARTTLS", "TURN"):
            return "unsynchronized"
        return None

    # ---- transactions ----------------------------------------------------

    def _end_txn(self, outcome, final_reply=None):
        t = self.txn
        if t is None:
            return
        self.txn = None
        self.bdat_open = False
        p = self.peer
        with p._lock:
            t.outcome = outcome
            t.final_reply = final_reply
            t.ended = time.time()
        p._write_state()

    # ---- the session -----------------------------------------------------

    def run(self):
        how = "?"
        try:
            self._session()
            how = "quit"
        except _Closed as e:
            how = e.args[0] if e.args else "closed"
        except Exception:
            how = "error"
            self.peer._error(f"connection {self.id}: " + traceback.format_exc())
        finally:
            if self.txn is not None:
                self._end_txn("dropped")
            try:
                self.sock.close()
            except OSError:
                pass
            if self.in_file:
                self.in_file.close()
            with self.peer._lock:
                self.rec["closed_by"] = how
                self.rec["ended"] = time.time()
                self.peer._conns.pop(self.id, None)
            self.peer._write_state()

    def _session(self):
        o, p = self.o, self.peer
        if self._pending(o.sync_wait):
            p._violation(self.id, "early_talker",
                         f"client sent {_text(bytes(self.buf[:80]))!r} before the greeting")
        if p._fault_fires("greeting"):
            self._reply(self._fault_action("greeting"))
            raise _Closed("fault_reply")
        self._reply(f"220 {o.hostname} ESMTP petrel test peer ({p.scenario})")
        for _ in range(MAX_COMMANDS):
            line = self._readline()
            if line is None:
                self._reply(self._r(500, "5.5.2", "Error: line too long"))
                continue
            text = _text(line)
            with p._lock:
                self.rec["commands"].append(text)
            self._log("C", text)
            verb = text.split(" ", 1)[0].upper()
            if ":" in verb:
                verb = verb.split(":", 1)[0]
            handler = {
                "EHLO": self._ehlo, "HELO": self._helo, "MAIL": self._mail,
                "RCPT": self._rcpt, "DATA": self._data, "BDAT": self._bdat,
                "RSET": self._rset, "NOOP": self._noop, "QUIT": self._quit,
                "VRFY": self._vrfy, "HELP": self._help,
                "STARTTLS": self._starttls, "AUTH": self._auth,
            }.get(verb)
            if handler is None:
                self._reply(self._r(500, "5.5.2", "Error: command not recognized"),
                            sync_kind=self._group_end(verb))
                continue
            if handler(text) == "quit":
                return
        self._reply(self._r(421, "4.7.0", "Too many commands, closing connection"))
        raise _Closed("too_many_commands")

    def _fault_action(self, stage):
        """Performs the configured fault at `stage`. "421", "close" and
        "garbage" end the connection (raise _Closed); any other fault is a
        reply line, returned for the caller to send instead."""
        f = self.o.fault
        if f not in ("421", "close", "garbage"):
            return self._fixed(f)
        line = None
        if f == "421":
            line = self._r(421, "4.3.0", "Service not available, closing transmission channel")
        elif f == "garbage":
            line = "this is not an SMTP reply"
        if self.txn is not None:   # recorded before the client can see it
            outcome = "dropped"
            if stage == "dot":     # the whole message was received
                outcome = "rejected" if f == "421" else "no_reply"
            self._end_txn(outcome, line)
        if f == "421":
            self._reply(line)
        elif f == "garbage":
            self._send_line(line)
        else:
            self._log("S", "(closes without a reply)")
        raise _Closed("fault_" + f)

    def _ehlo(self, text):
        o = self.o
        sync = "unsynchronized"
        if not o.ehlo:
            self._reply("500 5.5.1 Command unrecognized", sync_kind=sync)
            return
        name = text[5:].strip()
        if not name:
            self._reply(self._r(501, "5.5.4", "Syntax: EHLO hostname"), sync_kind=sync)
            return
        if self.txn is not None:
            self._end_txn("aborted")
        self.greeted, self.esmtp = True, True
        with self.peer._lock:
            self.rec["helo"], self.rec["esmtp"] = name, True
        ext = []
        if o.pipelining:
            ext.append("PIPELINING")
        if o.size:
            ext.append(f"SIZE {o.size}")
        if o.eightbitmime:
            ext.append("8BITMIME")
        if o.smtputf8:
            ext.append("SMTPUTF8")
        if o.dsn:
            ext.append("DSN")
        if o.enhancedstatuscodes:
            ext.append("ENHANCEDSTATUSCODES")
        if o.chunking:
            ext.append("CHUNKING")
        if o.rcptmax:
            ext.append(f"LIMITS RCPTMAX={o.rcptmax}")
        if o.tls_cert and not self.tls:
            ext.append("STARTTLS")
        if o.auth_user and self.tls:
            ext.append("AUTH PLAIN LOGIN")
        lines = [f"250 {o.hostname} Hello {name}"] + [f"250 {e}" for e in ext]
        lines = [l.replace(" ", "-", 1) for l in lines[:-1]] + lines[-1:]
        self._reply(lines, sync_kind=sync)

    def _helo(self, text):
        name = text[5:].strip()
        if not name:
            self._reply("501 Syntax: HELO hostname", sync_kind="unsynchronized")
            return
        if self.txn is not None:
            self._end_txn("aborted")
        self.greeted, self.esmtp = True, False
        with self.peer._lock:
            self.rec["helo"], self.rec["esmtp"] = name, False
        self._reply(f"250 {self.o.hostname}", sync_kind="unsynchronized")

    def _check_params(self, params, allowed):
        """Returns a refusal line for a parameter of an extension not
        advertised (recorded as a violation), else None."""
        for prm in params:
            key = prm.split("=", 1)[0].upper()
            if not self.esmtp:
                self.peer._violation(self.id, "esmtp_param_without_ehlo", prm)
                return self._r(555, "5.5.4", f"Unsupported option: {prm}")
            if key not in allowed:
                self.peer._violation(self.id, "unadvertised_param", prm)
                return self._r(555, "5.5.4", f"Unsupported option: {prm}")
        return None

    def _mail(self, text):
        o, p = self.o, self.peer
        sync = self._group_end("MAIL")
        if not text[:10].upper() == "MAIL FROM:":
            self._reply(self._r(501, "5.5.4", "Syntax: MAIL FROM:<address>"), sync_kind=sync)
            return
        if not self.greeted:
            self._reply(self._r(503, "5.5.1", "Error: send HELO/EHLO first"), sync_kind=sync)
            return
        if self.txn is not None:
            self._reply(self._r(503, "5.5.1", "Error: nested MAIL command"), sync_kind=sync)
            return
        if o.auth_user and not self.auth:
            self._reply(self._r(530, "5.7.0", "Authentication required"), sync_kind=sync)
            return
        parsed = _parse_path(text[10:])
        if parsed is None:
            self._reply(self._r(501, "5.1.7", "Bad sender address syntax"), sync_kind=sync)
            return
        addr, params, _ = parsed
        allowed = set()
        if o.size:
            allowed.add("SIZE")
        if o.eightbitmime:
            allowed.add("BODY")
        if o.smtputf8:
            allowed.add("SMTPUTF8")
        if o.dsn:
            allowed |= {"RET", "ENVID"}
        bad = self._check_params(params, allowed)
        if bad:
            self._reply(bad, sync_kind=sync)
            return
        for prm in params:
            k, _, v = prm.partition("=")
            if k.upper() == "BODY" and v.upper() not in ("7BIT", "8BITMIME"):
                p._violation(self.id, "unadvertised_param", prm)
                self._reply(self._r(555, "5.5.4", f"Unsupported option: {prm}"), sync_kind=sync)
                return
            if k.upper() == "SIZE" and o.size and v.isdigit() and int(v) > o.size:
                self._reply(self._r(552, "5.3.4", "Message size exceeds fixed limit"),
                            sync_kind=sync)
                return
        if p._fault_fires("mail"):
            self._reply(self._fault_action("mail"), sync_kind=sync)
            return
        with p._lock:
            p._next_txn += 1
            self.txn = _Txn(p._next_txn, self.id, addr, params)
            p._txns.append(self.txn)
            self.rec["transactions"].append(self.txn.id)
        self._reply(self._r(250, "2.1.0", "Ok"), sync_kind=sync)

    def _rcpt(self, text):
        o, p = self.o, self.peer
        sync = self._group_end("RCPT")
        if not text[:8].upper() == "RCPT TO:":
            self._reply(self._r(501, "5.5.4", "Syntax: RCPT TO:<address>"), sync_kind=sync)
            return
        t = self.txn
        if t is None:
            self._reply(self._r(503, "5.5.1", "Error: need MAIL command"), sync_kind=sync)
            return
        if self.bdat_open:
            self._reply(self._r(503, "5.5.1", "Error: RCPT after BDAT"), sync_kind=sync)
            return
        parsed = _parse_path(text[8:])
        if parsed is None or not parsed[0]:
            self._reply(self._r(501, "5.1.3", "Bad recipient address syntax"), sync_kind=sync)
            return
        addr, params, _ = parsed
        allowed = {"NOTIFY", "ORCPT"} if o.dsn else set()
        bad = self._check_params(params, allowed)
        if bad:
            self._reply(bad, sync_kind=sync)
            return
        with p._lock:
            t.rcpt_commands += 1
            t.rcpts_attempted.append(addr)
            t.rcpt_params[addr] = params
            p._rcpt_attempts[addr] = p._rcpt_attempts.get(addr, 0) + 1
        if o.rcptmax and t.rcpt_commands > o.rcptmax:
            p._violation(self.id, "rcptmax_exceeded",
                         f"RCPT number {t.rcpt_commands} with LIMITS RCPTMAX={o.rcptmax}")
        line = None
        if p._fault_fires("rcpt", t):
            line = self._fault_action("rcpt")
            if line.startswith("2"):
                with p._lock:
                    t.rcpts_accepted.append(addr)
        elif o.limit and len(t.rcpts_accepted) >= o.limit:
            line = self._fixed(o.limit_reply or _LIMIT_REPLIES.get(
                o.code, f"{o.code} Too many recipients"))
            with p._lock:
                t.limit_refusals += 1
        elif o.rcptmax and len(t.rcpts_accepted) >= o.rcptmax:
            line = self._r(452, "4.5.3", "Too many recipients")
            with p._lock:
                t.limit_refusals += 1
        elif self._rejected(addr):
            line = self._r(550, "5.1.1",
                           f"<{addr}>: Recipient address rejected: User unknown")
        elif o.greylist:
            key = addr.lower()
            with p._lock:
                seen = p._greylist_seen.get(key, 0)
                p._greylist_seen[key] = seen + 1
            if seen < o.greylist:
                line = self._r(451, "4.7.1", "Greylisted, please try again later")
        if line is None:
            line = self._r(250, "2.1.5", "Ok")
            with p._lock:
                t.rcpts_accepted.append(addr)
        with p._lock:
            t.rcpt_replies.append([addr, line])
        self._reply(line, sync_kind=sync)

    def _rejected(self, addr):
        local = addr.rsplit("@", 1)[0].lower() if "@" in addr else addr.lower()
        if local.startswith('"') and local.endswith('"'):
            local = local[1:-1]
        if local in self.peer._reject:
            return True
        return bool(self.peer._reject_re and self.peer._reject_re.search(addr))

    def _data(self, text):
        o, p = self.o, self.peer
        sync = self._group_end("DATA")
        if text.strip().upper() != "DATA":
            self._reply(self._r(501, "5.5.4", "Syntax: DATA"), sync_kind=sync)
            return
        t = self.txn
        if t is None:
            self._reply(self._r(503, "5.5.1", "Error: need RCPT command"), sync_kind=sync)
            return
        if self.bdat_open or t.method == "BDAT":
            self._reply(self._r(503, "5.5.1", "Error: DATA after BDAT"), sync_kind=sync)
            return
        if not t.rcpts_accepted:
            line = (self._r(554, "5.5.1", "Error: no valid recipients") if t.rcpts_attempted
                    else self._r(503, "5.5.1", "Error: need RCPT command"))
            self._reply(line, sync_kind=sync)
            return
        if p._fault_fires("data"):
            line = self._fault_action("data")
            self._reply(line, sync_kind=sync)
            self._end_txn("data_refused", line)
            return
        t.method = "DATA"
        self._reply([self._fixed(l) for l in o.lines_354],
                    sync_kind="content_before_354", pauses=o.pause)
        raw, message, oversize, bare = self._read_data()
        with p._lock:
            t.raw = raw
            t.content = _unstuff(message) if not oversize else b""
            t.oversize, t.bare_lf = oversize, bare
        self._log("C", f"(message: {len(raw)} octets as received)")
        self._end_of_message(t)

    def _bdat(self, text):
        o, p = self.o, self.peer
        m = re.fullmatch(r"BDAT ([0-9]{1,18})( +LAST)? *", text, re.I)
        if not m:
            self._reply(self._r(501, "5.5.4", "Syntax: BDAT size [LAST]"),
                        sync_kind=self._group_end("BDAT"))
            return
        size, last = int(m.group(1)), bool(m.group(2))
        keep = (o.size or (1 << 30)) + 1
        t = self.txn
        refusal = None
        if not (self.esmtp and o.chunking):
            self.peer._violation(self.id, "unadvertised_bdat", text)
            refusal = self._r(502, "5.5.1", "Error: BDAT not advertised")
        elif t is None:
            refusal = self._r(503, "5.5.1", "Error: need MAIL command")
        elif t.method == "DATA":
            refusal = self._r(503, "5.5.1", "Error: BDAT after DATA")
        elif not t.rcpts_accepted:
            refusal = self._r(554, "5.5.1", "Error: no valid recipients")
        elif not self.bdat_open and p._fault_fires("data"):
            self._read_exact(size, 0)
            line = self._fault_action("data")
            self._reply(line)
            self._end_txn("data_refused", line)
            return
        chunk, over = self._read_exact(size, keep)
        self._log("C", f"(BDAT chunk: {size} octets)")
        if refusal:
            self._reply(refusal)
            if t is not None and self.bdat_open:
                self._end_txn("rejected", refusal)
            return
        with p._lock:
            t.method = "BDAT"
            self.bdat_open = True
            t.bdat_chunks.append(size)
            t.raw = (t.raw or b"") + chunk
            t.oversize = bool(t.oversize or over or (o.size and len(t.raw) > o.size))
        if not last:
            self._reply(self._r(250, "2.0.0", f"{size} octets received"))
            return
        with p._lock:
            t.content = t.raw if not t.oversize else b""
        self._end_of_message(t)

    def _end_of_message(self, t):
        """After the whole message: fault, delay, then the final reply."""
        o, p = self.o, self.peer
        with p._lock:
            for r in t.rcpts_accepted:
                p._received[r] = p._received.get(r, 0) + 1
        p._save_message(t)
        sync = None if (self.esmtp and o.pipelining) else "unsynchronized"
        if sync is None and self.buf:
            # Legal with PIPELINING (RFC 2920 3.1); noted for the curious.
            self._log("S", "(client pipelined after the end of data)")
        override = None
        if p._fault_fires("dot"):
            override = self._fault_action("dot")   # returns only a reply line
        if o.delay and p._stop.wait(o.delay):
            raise _Closed("stop")
        qid = f"P{t.id:06d}"
        if override is not None:
            lines = [override]
        elif t.oversize:
            lines = [self._r(552, "5.3.4", "Message size exceeds fixed limit")]
        else:
            lines = [self._fixed(l.format(id=qid)) for l in o.final_lines] or [
                self._r(250, "2.0.0", f"Ok: queued as {qid}")]
        # The outcome is recorded (and the state file written) just before
        # the reply goes out, so a client holding the reply always finds it
        # in the state; undone if the reply cannot be sent.
        ok = lines[0].startswith("2")
        if ok:
            with p._lock:
                for r in t.rcpts_accepted:
                    p._delivered[r] = p._delivered.get(r, 0) + 1
        self._end_txn("delivered" if ok else "rejected", "\n".join(lines))
        try:
            self._reply(lines, sync_kind=sync,
                        byte_delay=o.byte_delay if o.byte_delay > 0 else None)
        except _Closed:
            with p._lock:
                if ok:
                    for r in t.rcpts_accepted:
                        p._delivered[r] -= 1
                t.outcome = "reply_failed"
            p._write_state()
            raise

    def _rset(self, text):
        if self.txn is not None:
            self._end_txn("aborted")
        self._reply(self._r(250, "2.0.0", "Ok"), sync_kind=self._group_end("RSET"))

    def _noop(self, text):
        self._reply(self._r(250, "2.0.0", "Ok"), sync_kind=self._group_end("NOOP"))

    def _vrfy(self, text):
        self._reply(self._r(252, "2.0.0", "Cannot VRFY user"), sync_kind=self._group_end("VRFY"))

    def _help(self, text):
        self._reply(self._r(214, "2.0.0", "See RFC 5321"), sync_kind=self._group_end("HELP"))

    def _starttls(self, text):
        o = self.o
        if not o.tls_cert or self.tls:
            self.peer._violation(self.id, "unadvertised_starttls", text)
            self._reply(self._r(502, "5.5.1", "Error: STARTTLS not offered"),
                        sync_kind=self._group_end("STARTTLS"))
            return
        if self._pending(0):
            self.peer._violation(self.id, "pipelined_after_starttls",
                                 _text(bytes(self.buf[:80])))
        if o.tls_mode == "broken":
            self._reply(self._r(220, "2.0.0", "Ready to start TLS"))
            self._sendall(b"this is not a TLS handshake\r\n" * 4)
            raise _Closed("tls_broken")
        ready = self._fit(self._r(220, "2.0.0", "Ready to start TLS"))
        self._log("S", "220 2.0.0 Ready to start TLS")
        if o.tls_mode == "inject":
            ready += b"250 2.0.0 injected before the handshake\r\n"
            self._log("S", "(injected) 250 2.0.0 injected before the handshake")
        self._sendall(ready)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(o.tls_cert, o.tls_key)
        self.buf.clear()
        self.sock.settimeout(30)
        try:
            self.sock = ctx.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.peer._lock:
                self.rec["tls_error"] = str(e)
            raise _Closed("tls_handshake_failed")
        self.sock.settimeout(0.1)
        self.tls = True
        self.greeted, self.esmtp = False, False
        with self.peer._lock:
            self.rec["tls"] = self.sock.version()

    def _auth(self, text):
        o = self.o
        parts = text.split()
        if not (o.auth_user and self.tls) or self.auth:
            self._reply(self._r(503, "5.5.1", "Error: AUTH not possible"))
            return
        mech = parts[1].upper() if len(parts) > 1 else ""
        try:
            if mech == "PLAIN":
                if len(parts) > 2:
                    resp = parts[2]
                else:
                    self._reply("334 ")
                    resp = _text(self._readline() or b"")
                _, user, password = base64.b64decode(resp).decode().split("\0")
            elif mech == "LOGIN":
                self._reply("334 VXNlcm5hbWU6")
                user = base64.b64decode(self._readline() or b"").decode()
                self._reply("334 UGFzc3dvcmQ6")
                password = base64.b64decode(self._readline() or b"").decode()
            else:
                self._reply(self._r(504, "5.5.4", "Unrecognized authentication type"))
                return
        except ValueError:
            self._reply(self._r(501, "5.5.2", "Cannot decode response"))
            return
        if user == o.auth_user and password == o.auth_password:
            self.auth = user
            with self.peer._lock:
                self.rec["auth"] = user
            self._reply(self._r(235, "2.7.0", "Authentication successful"))
        else:
            with self.peer._lock:
                self.rec["auth_failures"] = self.rec.get("auth_failures", 0) + 1
            self._reply(self._r(535, "5.7.8", "Authentication credentials invalid"))

    def _quit(self, text):
        if self.txn is not None:
            self._end_txn("aborted")
        self._reply(self._r(221, "2.0.0", "Bye"), sync_kind=self._group_end("QUIT"))
        return "quit"


# ---- reading the state, and the peer as a separate process ---------------

def read_state(path, timeout=10.0):
    """Reads a state file (waits, bounded, for it to exist)."""
    end = time.monotonic() + timeout
    while True:
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            if time.monotonic() > end:
                raise
            time.sleep(0.02)


class PeerProcess:
    """The peer as a child process (this file's CLI), with Peer's API:
    start(), .port, stats() (reads the state file), stop(), wait_for()."""

    def __init__(self, scenario="accept", state_path=None, host="127.0.0.1",
                 python=None, port=0, **options):
        if state_path is None:
            raise ValueError("PeerProcess needs a state_path")
        self.scenario = scenario
        self.state_path = state_path
        self.host = host
        self.port = None
        self.proc = None
        self.args = [python or sys.executable, os.path.abspath(__file__),
                     "--port", str(port), "--host", host, "--script", scenario,
                     "--state", state_path] + options_to_args(options)
        self.log_path = state_path + ".log"

    def start(self, timeout=30.0):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                     stderr=self._log)
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        first = self.proc.stdout.readline().decode() if r else ""
        m = re.fullmatch(r"port (\d+)\n", first)
        if not m:
            self.stop()
            raise AssertionError(f"peer did not start: {first!r}; see {self.log_path}")
        self.port = int(m.group(1))
        return self

    def stats(self):
        return read_state(self.state_path)

    def wait_for(self, predicate, timeout=30.0, what="condition"):
        def dead():
            if self.proc.poll() is None:
                return None
            return f"peer exited ({self.proc.returncode})"
        return wait_for_stats(self.stats, predicate, timeout, what, dead)

    def stop(self, timeout=15.0):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        self._log.close()
        self.proc = None
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def options_to_args(options):
    """Options (a dict of Options fields) as CLI flags."""
    fields = {f.name: f for f in dataclasses.fields(Options)}
    out = []
    for k, v in options.items():
        if k not in fields:
            raise ValueError(f"unknown option {k!r}")
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            out.append(flag if v else "--no-" + k.replace("_", "-"))
        elif isinstance(v, (list, tuple)):
            for item in v:
                out += [flag, str(item)]
            if not v:
                out += [flag + "-none"]
        else:
            out += [flag, str(v)]
    return out


def _parser():
    ap = argparse.ArgumentParser(
        description="petrel's scripted SMTP peer. Scenarios:\n" + "\n".join(
            f"  {n}: {d}" for n, (d, _) in SCENARIOS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--script", default="accept", choices=sorted(SCENARIOS))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1", help="127.0.0.1 or ::1")
    ap.add_argument("--state", help="JSON state file, rewritten atomically")
    ap.add_argument("--messages-dir", help="default: STATE.d")
    defaults = Options()
    for f in dataclasses.fields(Options):
        flag = "--" + f.name.replace("_", "-")
        d = getattr(defaults, f.name)
        if isinstance(d, bool):
            ap.add_argument(flag, dest=f.name, default=None,
                            action=argparse.BooleanOptionalAction)
        elif isinstance(d, list):
            ap.add_argument(flag, dest=f.name, default=None, action="append",
                            help="repeatable" + ("; or comma-separated" if f.name == "reject" else ""))
            ap.add_argument(flag + "-none", dest=f.name, action="store_const", const=[],
                            help=argparse.SUPPRESS)
        else:
            ap.add_argument(flag, dest=f.name, default=None, type=type(d))
    return ap


def main(argv=None):
    args = _parser().parse_args(argv)
    options = {}
    for f in dataclasses.fields(Options):
        v = getattr(args, f.name)
        if v is not None:
            options[f.name] = v
    if "reject" in options:
        options["reject"] = [x for v in options["reject"] for x in v.split(",") if x]
    peer = Peer(args.script, host=args.host, port=args.port,
                state_path=args.state, messages_dir=args.messages_dir, **options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    peer.start()
    print(f"port {peer.port}", flush=True)
    # Bounded: the peer's own max-seconds cap ends this loop too.
    while not stop.wait(0.1) and not peer.wait_stopped(0):
        pass
    peer.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
