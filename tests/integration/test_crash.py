"""kill -9 while clients send: every message answered 250 is in the spool
afterwards, exactly once, with its content; nothing half-written remains."""
import re
import socket
import threading
import time

from conftest import Petrel, wait_for

CYCLES = 5
SENDERS = 4
RUN_SECONDS = 1.5  # per cycle; bounds the load loop


def sender(p, tag, acked, stop):
    n = 0
    while not stop.is_set():
        try:
            c = p.connect(timeout=10)
            c.reply()
            c.cmd("EHLO crash.example")
            while not stop.is_set() and n < 10000:
                n += 1
                mid = f"<{tag}.{n}@crash.example>"
                c.send("MAIL FROM:<a@remote.example>\r\nRCPT TO:<b@example.test>\r\n")
                c.reply(); c.reply()
                if c.cmd("DATA")[0] != 354:
                    continue
                code, lines = c.cmd(f"Message-ID: {mid}\r\nSubject: x\r\n\r\n{'z' * 2000}\r\n.")
                if code == 250:
                    qid = re.search(r"queued as (\S+)", lines[-1]).group(1)
                    acked.append((qid, mid))
        except (OSError, EOFError, AttributeError):
            time.sleep(0.05)


def test_kill9_loses_no_acknowledged_message(workdir):
    p = Petrel(workdir)
    acked = []
    for cycle in range(CYCLES):
        p.start()
        stop = threading.Event()
        threads = [threading.Thread(target=sender, args=(p, f"c{cycle}s{i}", acked, stop))
                   for i in range(SENDERS)]
        for t in threads:
            t.start()
        time.sleep(RUN_SECONDS)
        p.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert len(acked) > 0
    msgs = p.spool_messages()
    ids = [m["id"] for m in msgs]
    assert len(ids) == len(set(ids)), "a message is in the spool twice"
    in_spool = set(ids)
    lost = [qid for qid, _ in acked if qid not in in_spool]
    assert not lost, f"{len(lost)} of {len(acked)} acknowledged messages lost"
    # Content is complete and belongs to the right message.
    for qid, mid in acked[:: max(1, len(acked) // 50)]:
        content = p.spool_content(qid)
        assert f"Message-ID: {mid}\r\n".encode() in content
        assert content.endswith(b"z" * 2000 + b"\r\n")
    # Messages in the spool that were never acknowledged are possible (the
    # 250 was lost with the connection) but must be whole messages.
    for qid in in_spool - {q for q, _ in acked}:
        assert p.spool_content(qid).endswith(b"\r\n")
