"""Fixtures for the reliability tests (issue 5): petrel under attack and
failure, on the real binary over loopback TCP.

The integration and delivery fixtures are loaded from their folders under
other module names (never as "conftest"), so the folders do not fight over
the name. Every server binds 127.0.0.1; every wait and loop is bounded;
nothing asserts on timing.

Figures: each test asks for the `row` fixture and calls
row(case, tried, figure) once or more. At teardown the rows are given the
test's outcome (PASS, or FAIL for a failure or a known bug marked xfail) and,
if $PETREL_RELIABILITY_RECORD names a file, appended to it as JSON lines
{case, tried, figure, result, test}. scripts/reliability prints them.

Scale: $PETREL_SOAK=1 (make soak, make reliability) selects the heavy
variants; without it every test stays small enough for make test.
"""
import importlib.util
import json
import os
import resource
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TESTS, "peer"))

from peer import Peer, PeerProcess  # noqa: E402,F401  (re-exported)


def _load(name, path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


# The delivery conftest loads the integration one as
# "petrel_integration_conftest"; load it first under that name ourselves so
# both share one module (and one list of running servers).
_integration = _load("petrel_integration_conftest",
                     os.path.join(TESTS, "integration", "conftest.py"))
_delivery = _load("petrel_delivery_conftest",
                  os.path.join(TESTS, "delivery", "conftest.py"))

PETREL = _integration.PETREL
Petrel = _integration.Petrel
SmtpConn = _integration.SmtpConn
wait_for = _integration.wait_for
free_port = _integration.free_port
queued_id = _integration.queued_id
no_leaked_servers = _integration.no_leaked_servers   # autouse fixture
workdir = _integration.workdir                       # fixture
start_peer = _delivery.start_peer                    # fixture
relay_config = _delivery.relay_config
make_message = _delivery.make_message
submit = _delivery.submit
maildir_files = _delivery.maildir_files
wait_maildir = _delivery.wait_maildir
Dsn = _delivery.Dsn
SENDER = _delivery.SENDER

SOAK = os.environ.get("PETREL_SOAK", "") not in ("", "0")


def scale(small, full):
    """small under make test, full under make soak / make reliability."""
    return full if SOAK else small


# ---- petrel helpers -----------------------------------------------------------

def server_option(p, text):
    """Adds lines to the [server] table of p's generated config (the
    integration Petrel writes that table itself)."""
    with open(p.config_path) as f:
        cfg = f.read()
    cfg = cfg.replace('hostname = "mx.example.test"',
                      'hostname = "mx.example.test"\n' + text.strip(), 1)
    with open(p.config_path, "w") as f:
        f.write(cfg)
    return p


def rss_kib(pid):
    """VmRSS of a process in KiB (from /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def vmhwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def raise_nofile(want):
    """Raises the soft RLIMIT_NOFILE of this process (and so of the petrel
    it starts) towards want; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def session(p, ehlo="client.example"):
    c = p.connect()
    code, _ = c.reply()
    assert code == 220
    assert c.cmd(f"EHLO {ehlo}")[0] == 250
    return c


def read_replies(c, n, timeout=60):
    """n replies, or fewer if the server closes; returns [(code, lines)]."""
    out = []
    c.sock.settimeout(timeout)
    for _ in range(n):
        try:
            out.append(c.reply())
        except (EOFError, OSError):
            break
    return out


def queue_json(p):
    return json.loads(p.cli("queue", "list", "--json").stdout)


# ---- the table --------------------------------------------------------------

RECORD = os.environ.get("PETREL_RELIABILITY_RECORD")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    reports = item.__dict__.setdefault("_rel_reports", {})
    reports[rep.when] = rep


# The case a file's tests belong to, for a test that fails before it has
# recorded its own row.
CASE_OF_FILE = {
    "test_smuggling.py": "1 smuggling",
    "test_pipelining.py": "2 pipelining",
    "test_injection.py": "3 injection",
    "test_resources.py": "4 resources",
    "test_relay.py": "5-7 relay, loops, bounces",
    "test_kill_storm.py": "8 SIGKILL storm",
    "test_slow_clients.py": "9 slow clients",
    "test_overload.py": "10 overload",
}


class Rows:
    def __init__(self):
        self.rows = []

    def __call__(self, case, tried, figure):
        self.rows.append({"case": case, "tried": tried, "figure": figure})


@pytest.fixture
def row(request):
    """row(case, tried, figure): one line of the `make reliability` table."""
    rows = Rows()
    yield rows
    reps = request.node.__dict__.get("_rel_reports", {})
    call = reps.get("call")
    setup = reps.get("setup")
    xfail = request.node.get_closest_marker("xfail")
    if call is not None and call.passed and not hasattr(call, "wasxfail"):
        result = "PASS"
    elif call is not None and hasattr(call, "wasxfail"):
        result = "FAIL (known, xfail)" if call.skipped else "FAIL (xfail passed)"
    elif setup is not None and setup.skipped:
        result = "SKIP"
    elif call is not None and call.skipped:
        result = "SKIP"
    else:
        result = "FAIL"
    if xfail is not None and call is not None and call.failed \
            and "XPASS" in str(call.longrepr):
        result = "FAIL (xfail passed: fixed? remove the mark)"
    if xfail is not None and result == "PASS":
        result = "FAIL (xfail passed: fixed? remove the mark)"
    if not rows.rows:
        rows(CASE_OF_FILE.get(os.path.basename(str(request.node.fspath)), "?"),
             request.node.name, "no figure: the test ended before recording one")
    for r in rows.rows:
        r["result"] = result
        r["test"] = request.node.nodeid
        if RECORD:
            with open(RECORD, "a") as f:
                f.write(json.dumps(r) + "\n")


def fmt_kib(k):
    return f"{k / 1024:.1f} MiB"
