"""Start, stop, restart, limits on connections, timeouts, config errors."""
import signal
import smtplib

from conftest import Petrel, queued_id, wait_for


def send_one(p, subject="x"):
    with smtplib.SMTP(p.host, p.port, timeout=30) as s:
        s.ehlo("c.example")
        s.mail("a@remote.example")
        s.rcpt("b@example.test")
        code, text = s.data(f"Subject: {subject}\r\n\r\nhi\r\n".encode())
        assert code == 250
        return queued_id([text.decode()])


def test_sigterm_ends_idle_sessions_and_exits_zero(petrel):
    c = petrel.connect()
    assert c.reply()[0] == 220
    c.cmd("EHLO c.example")
    petrel.proc.send_signal(signal.SIGTERM)
    code, lines = c.reply()
    assert code == 421 and "4.3.2" in lines[0]
    assert petrel.stop() == 0


def test_restart_finds_every_queued_message(workdir):
    p = Petrel(workdir).start()
    ids = {send_one(p, f"m{i}") for i in range(10)}
    assert p.stop() == 0
    p.start()
    ids.add(send_one(p, "after restart"))
    p.stop()
    assert set(p.spool_ids()) == ids


def test_connection_limit_per_ip(workdir):
    p = Petrel(workdir, extra_config="[limits]\nmax_connections_per_ip = 2\n").start()
    try:
        a, b = p.connect(), p.connect()
        assert a.reply()[0] == 220 and b.reply()[0] == 220
        c = p.connect()
        code, lines = c.reply()
        assert code == 421 and "4.7.0" in lines[0]
        assert c.closed()
        a.cmd("QUIT")
        a.close()
        # A slot is free again once the first session has gone.
        def admitted():
            d = p.connect()
            ok = d.reply()[0] == 220
            d.close()
            return ok
        wait_for(admitted, what="a free connection slot")
    finally:
        p.stop()


def test_idle_client_times_out(workdir):
    p = Petrel(workdir, extra_config='[server]\ncommand_timeout = "1s"\n')
    # [server] is already in the generated config: merge by rewriting.
    text = open(p.config_path).read().replace(
        '[server]\ncommand_timeout = "1s"\n', "").replace(
        'hostname = "mx.example.test"', 'hostname = "mx.example.test"\ncommand_timeout = "1s"')
    open(p.config_path, "w").write(text)
    p.start()
    try:
        c = p.connect(timeout=60)
        assert c.reply()[0] == 220
        code, lines = c.reply()  # nothing sent: the server gives up
        assert code == 421 and "4.4.2" in lines[0]
        assert c.closed()
    finally:
        p.stop()


def test_check_config_names_file_line_and_key(workdir):
    p = Petrel(workdir, extra_config="[limits]\nmax_recipients = 50\nbogus_key = 1\n")
    r = p.cli("check-config", check=False)
    assert r.returncode == 1
    assert "petrel.toml:" in r.stderr
    assert "limits.max_recipients" in r.stderr
    assert "bogus_key" in r.stderr


def test_bad_config_refuses_to_start(workdir):
    p = Petrel(workdir, extra_config="[limits]\nmax_message_size = \"lots\"\n")
    r = p.cli("serve", check=False)
    assert r.returncode == 1
    assert "limits.max_message_size" in r.stderr
