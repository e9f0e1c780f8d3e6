"""A private, loopback-only Postfix instance for petrel's interop tests.

    from postfix_instance import PostfixInstance, PostfixUnavailable

    with PostfixInstance(mode="hold") as pf:            # or mode="relay",
        ... smtplib.SMTP("127.0.0.1", pf.port) ...      # relayhost="127.0.0.1:N"
        pf.wait_queue(lambda q: ..., what="...")        # postqueue -j, parsed

The same approach as bench/run: its own config_directory, queue_directory
and data_directory in a fresh temporary directory (the system's main.cf and
master.cf are never used, the system instance is never touched), main.cf and master.cf
written from scratch so that the only inet service is one smtpd on
127.0.0.1:PORT (a free port; never port 25), no chroot, no DNS
(smtp_dns_support_level = disabled, smtp_host_lookup = native), logging to a
file in the instance through postlogd.

Modes:
  hold   every message accepted by smtpd goes to the hold queue
         (smtpd_end_of_data_restrictions = check_client_access static:HOLD);
         nothing is delivered. Read it with queue() (postqueue -j) and
         content(queue_id) (postcat).
  relay  every message goes to relayhost ("host:port", sent as
         [host]:port, so no MX lookup) through Postfix's smtp client.

Processes: `postfix check` creates the queue, then the master daemon runs as
a direct child of this process in the foreground (master -s); it leads its
own process group, which holds every process of the instance (smtpd, qmgr,
...). stop() (also at interpreter exit and on leaving the with-block) sends
SIGTERM to the master, waits, then SIGKILLs whatever is left of that group,
and removes the directory. A watchdog (a small child process holding the
read end of a pipe whose write end only this process has) does the same if
this process dies without stop(), even by SIGKILL: PR_SET_PDEATHSIG cannot
be used on the master itself, which changes its effective uid and so loses
it.

PETREL_KEEP_POSTFIX=1 in the environment keeps the directory (configuration,
queue, log/postfix.log) for inspection.

Needs root (the master runs as root and drops to mail_owner = postfix), the
postfix user and the postdrop group. available() says whether it can run;
start() raises PostfixUnavailable when it cannot start, so tests can skip.
"""
import atexit
import json
import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTQUEUE = "/usr/sbin/postqueue"
POSTCAT = "/usr/sbin/postcat"
SASLPASSWD2 = "/usr/sbin/saslpasswd2"   # sasl2-bin; sasl_users

_RUNNING = []


class PostfixUnavailable(RuntimeError):
    """Postfix is not installed or this instance could not start."""


def _free_port(host="127.0.0.1"):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _run(args, timeout=60, check=True):
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise PostfixUnavailable(f"{' '.join(args)} failed ({r.returncode}): "
                                 f"{r.stdout}{r.stderr}")
    return r


def why_unavailable():
    """None if a private instance can run here, else the reason."""
    for b in (POSTFIX, POSTCONF, POSTQUEUE, POSTCAT, SASLPASSWD2):
        if not os.access(b, os.X_OK):
            return f"{b} is not installed"
    if os.geteuid() != 0:
        return "a Postfix instance needs root"
    try:
        pwd.getpwnam("postfix")
        grp.getgrnam("postdrop")
    except KeyError as e:
        return f"no {e} user/group"
    return None


def available():
    return why_unavailable() is None


# Run by the watchdog: argv[1] is the master's PID (= its process group),
# argv[2] the instance directory. Blocks until stdin reaches EOF (the test
# process closed it or died), then stops that group (SIGTERM, up to 5 s,
# SIGKILL) and removes the directory.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
pgid = int(sys.argv[1])
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while os.read(0, 512):
    pass
def kill(sig):
    try:
        os.killpg(pgid, sig)
        return True
    except ProcessLookupError:
        return False
if kill(signal.SIGTERM):
    end = time.monotonic() + 5
    while time.monotonic() < end and kill(0):
        time.sleep(0.05)
    kill(signal.SIGKILL)
if not os.environ.get("PETREL_KEEP_POSTFIX"):
    shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


class PostfixInstance:
    MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
"""

    def __init__(self, mode="hold", relayhost=None, myhostname="postfix.example.org",
                 extra_settings=(), sasl_users=None, start=True):
        if mode not in ("hold", "relay"):
            raise ValueError(f"mode must be hold or relay, not {mode!r}")
        if mode == "relay" and not relayhost:
            raise ValueError("mode relay needs relayhost='host:port'")
        if relayhost:
            h = relayhost.rsplit(":", 1)[0]
            if not (h == "127.0.0.1" or h.startswith("127.")):
                raise ValueError(f"relayhost must be on loopback, not {relayhost!r}")
        self.mode = mode
        self.relayhost = relayhost
        self.myhostname = myhostname
        self.extra_settings = list(extra_settings)
        self.sasl_users = dict(sasl_users or {})
        self.port = None
        self.proc = None
        self.dir = None
        self._watchdog = None
        self._watch_w = None
        if start:
            self.start()

    # ---- paths -------------------------------------------------------------

    @property
    def etc(self):
        return os.path.join(self.dir, "etc")

    @property
    def queue_dir(self):
        return os.path.join(self.dir, "queue")

    @property
    def log_path(self):
        return os.path.join(self.dir, "log", "postfix.log")

    # ---- lifecycle ---------------------------------------------------------

    def settings(self):
        s = [
            "compatibility_level = 3.6",
            f"config_directory = {self.etc}",
            f"queue_directory = {self.queue_dir}",
            f"data_directory = {os.path.join(self.dir, 'data')}",
            "mail_owner = postfix",
            "setgid_group = postdrop",
            # Loopback only; the one inet service is in master.cf.
            "inet_interfaces = 127.0.0.1",
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            f"myhostname = {self.myhostname}",
            "mydomain = postfix.invalid",
            "myorigin = postfix.invalid",
            # Nothing is local: every domain is relayed (mynetworks may).
            "mydestination =",
            "local_recipient_maps =",
            "local_transport = error:5.1.1 no local delivery here",
            "alias_maps =",
            "alias_database =",
            "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
            "smtpd_recipient_limit = 1000",
            "message_size_limit = 10240000",
            "in_flow_delay = 0",
            # No DNS at all.
            "smtpd_peername_lookup = no",
            "smtp_host_lookup = native",
            "lmtp_host_lookup = native",
            "smtp_dns_support_level = disabled",
            "biff = no",
            # Retry quickly if the next hop is briefly unavailable.
            "queue_run_delay = 2s",
            "minimal_backoff_time = 2s",
            "maximal_backoff_time = 4s",
            f"maillog_file = {self.log_path}",
            f"maillog_file_prefixes = {self.dir}",
        ]
        if self.mode == "hold":
            s.append("smtpd_end_of_data_restrictions = check_client_access static:HOLD")
        else:
            host, port = self.relayhost.rsplit(":", 1)
            s.append(f"relayhost = [{host}]:{port}")
        return s + self.extra_settings

    def start(self, timeout=60.0):
        reason = why_unavailable()
        if reason:
            raise PostfixUnavailable(reason)
        self.dir = tempfile.mkdtemp(prefix="petrel-postfix-")
        _RUNNING.append(self)
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout):
        os.chmod(self.dir, 0o755)   # Postfix daemons (user postfix) reach the queue
        for sub in ("etc", "queue", "data", "log"):
            os.makedirs(os.path.join(self.dir, sub))
        shutil.chown(os.path.join(self.dir, "data"), "postfix")
        self.port = _free_port()
        with open(os.path.join(self.etc, "main.cf"), "w"):
            pass
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(self.MASTER_CF.format(port=self.port))
        if self.sasl_users:
            self._write_sasl()
        _run([POSTCONF, "-c", self.etc, "-e", *self.settings()])
        # Creates the queue directories with the right owners (post-install).
        _run([POSTFIX, "-c", self.etc, "check"], check=False)
        env = dict(os.environ, MAIL_CONFIG=self.etc)
        daemon_dir = _run([POSTCONF, "-c", self.etc, "-h", "daemon_directory"]).stdout.strip()
        self._out = open(os.path.join(self.dir, "log", "master.out"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(daemon_dir, "master"), "-c", self.etc, "-s"],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT,
            env=env)
        # The watchdog must outlive us to clean up: no PR_SET_PDEATHSIG here.
        r, self._watch_w = os.pipe()   # not inheritable: only we hold the write end
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(self.proc.pid), self.dir],
                stdin=r, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            os.close(r)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    s.settimeout(10)
                    if s.recv(512).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.1)
        raise PostfixUnavailable("private Postfix did not start:\n" + self.log()[-3000:])

    def _write_sasl(self):
        """Cyrus SASL for smtpd: a sasldb of sasl_users (realm myhostname)
        and smtpd.conf. Debian's Postfix reads that from
        $config_directory/sasl/ (it ignores cyrus_sasl_config_path), so
        the instance's own etc/sasl/ is used and nothing of the system's.
        smtpd runs as postfix: both files must be readable by it."""
        sasl = os.path.join(self.etc, "sasl")
        os.makedirs(sasl)
        os.chmod(sasl, 0o755)
        db = os.path.join(sasl, "sasldb2")
        for user, password in self.sasl_users.items():
            r = subprocess.run(["saslpasswd2", "-p", "-c", "-f", db, "-u", self.myhostname,
                                user], input=password.encode(), capture_output=True,
                               timeout=30)
            if r.returncode != 0:
                raise PostfixUnavailable(f"saslpasswd2 failed: {r.stderr!r}")
        shutil.chown(db, "postfix")
        os.chmod(db, 0o600)
        with open(os.path.join(sasl, "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    f"mech_list: PLAIN LOGIN\nsasldb_path: {db}\n")

    def stop(self, timeout=30.0):
        """Stops the master and every process of this instance; removes the
        directory. Idempotent."""
        if self.proc is not None:
            pgid = self.proc.pid   # master -s leads its own process group
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            # The master SIGTERMs its children and exits without waiting.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _group_alive(pgid):
                time.sleep(0.05)
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc = None
            self._out.close()
        if self._watch_w is not None:
            os.close(self._watch_w)        # EOF: the watchdog finds nothing, exits
            self._watch_w = None
        if self._watchdog is not None:
            try:
                self._watchdog.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
            self._watchdog = None
        if self in _RUNNING:
            _RUNNING.remove(self)
        if self.dir is not None:
            if os.environ.get("PETREL_KEEP_POSTFIX"):
                print(f"kept {self.dir}")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc):
        self.stop()

    # ---- reading the instance ----------------------------------------------

    def log(self):
        parts = []
        for name in ("postfix.log", "master.out"):
            try:
                with open(os.path.join(self.dir, "log", name), errors="replace") as f:
                    parts.append(f.read())
            except (FileNotFoundError, TypeError):
                pass
        return "\n".join(parts)

    def queue(self):
        """postqueue -j: one dict per queued message (queue_name, queue_id,
        sender, recipients [{address, ...}], ...)."""
        r = _run([POSTQUEUE, "-c", self.etc, "-j"])
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def content(self, queue_id):
        """The message (headers and body) of a queued message, as bytes with
        LF line ends (postcat -bh)."""
        r = subprocess.run([POSTCAT, "-c", self.etc, "-bh", "-q", queue_id],
                           capture_output=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"postcat {queue_id}: {r.stderr!r}")
        return r.stdout

    def wait_queue(self, predicate, timeout=120.0, what="the Postfix queue"):
        deadline = time.monotonic() + timeout
        q = None
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise AssertionError("Postfix master exited:\n" + self.log()[-3000:])
            q = self.queue()
            if predicate(q):
                return q
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; queue: {q}\n"
                             + self.log()[-3000:])


def _group_alive(pgid):
    """True if a process of group pgid still runs (zombies do not count)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # After "(comm)": state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


@atexit.register
def _stop_all():
    for pf in list(_RUNNING):
        pf.stop()
