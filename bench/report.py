#!/usr/bin/python3
"""Formats bench/run's raw results: three tables on stdout, Markdown and JSON.

Inputs (tab-separated, written by bench/run):
  --results  server, case, size, sessions, rcpts, msgs, secs, done, status,
             server CPU seconds, client (smtp-source) CPU seconds
             (status: ok | capped | fail | skipped: deadline reached |
             down: the server had died before the step)
  --memory   server, sessions, private KiB before, private KiB after, procs
  --meta     key, value
  --relay    server, case, size, sessions, rcpts, msgs, secs (first submission
             to last message counted by smtp-sink), delivered (messages the
             sink counted), status, server CPU s, client CPU s, submit secs
             (the smtp-source run alone), transactions and sessions counted
             by the sink, sink CPU s (optional; status as for --results)
Rates are accepted messages (2xx after the end of DATA) per wall-clock second
of the smtp-source run. Ratios are petrel/Postfix for both tables: above 1 is
petrel faster; below 1 is petrel using less memory.
"""

import argparse
import json
import os
import sys

# The targets: case name -> minimum petrel/Postfix rate ratio.
RATE_TARGETS = {
    "1 KiB x 20 sess x 1 rcpt": 3.0,
    "1 KiB x 20 sess x 100 rcpt": 10.0,
}
MEMORY_TARGET_KIB = 32.0  # petrel, per idle session
# Relay (end to end, smtp-source -> server -> smtp-sink): minimum ratios.
RELAY_TARGETS = {
    "1 KiB x 20 sess x 1 rcpt": 2.0,
    "1 KiB x 20 sess x 100 rcpt": 10.0,
}


def read_tsv(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def load(args):
    runs = {}
    order = []
    for server, case, size, sess, rcpt, msgs, secs, done, status, scpu, \
            ccpu in read_tsv(args.results):
        if case not in runs:
            runs[case] = {"case": case, "size_bytes": int(size),
                          "sessions": int(sess), "recipients": int(rcpt),
                          "messages": int(msgs)}
            order.append(case)
        secs_f, done_i = float(secs), int(done)
        rate = done_i / secs_f if secs_f > 0 and status in ("ok", "capped") \
            else None
        runs[case][server] = {"seconds": secs_f, "accepted": done_i,
                              "status": status, "msg_per_s": rate,
                              "server_cpu_s": float(scpu),
                              "client_cpu_s": float(ccpu)}
    memory = {}
    for server, sessions, before, after, procs in read_tsv(args.memory):
        n = int(sessions)
        if before == "FAIL":
            memory[server] = {"sessions": n, "status": "fail"}
            continue
        b, a = int(before), int(after)
        memory[server] = {"sessions": n, "private_kib_before": b,
                          "private_kib_after": a, "processes": int(procs),
                          "kib_per_session": (a - b) / n, "status": "ok"}
    meta = dict(read_tsv(args.meta))
    return [runs[c] for c in order], memory, meta


def load_relay(path):
    if not path:
        return []
    runs, order = {}, []
    for server, case, size, sess, rcpt, msgs, secs, done, status, scpu, \
            ccpu, subs, trans, sinks, kcpu in read_tsv(path):
        if case not in runs:
            runs[case] = {"case": case, "size_bytes": int(size),
                          "sessions": int(sess), "recipients": int(rcpt),
                          "messages": int(msgs)}
            order.append(case)
        secs_f, done_i = float(secs), int(done)
        rate = done_i / secs_f if secs_f > 0 and status in ("ok", "capped") \
            else None
        runs[case][server] = {"seconds": secs_f, "delivered": done_i,
                              "status": status, "msg_per_s": rate,
                              "submit_seconds": float(subs),
                              "sink_transactions": int(trans),
                              "sink_sessions": int(sinks),
                              "server_cpu_s": float(scpu),
                              "client_cpu_s": float(ccpu),
                              "sink_cpu_s": float(kcpu)}
    return [runs[c] for c in order]


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt_rate(run):
    if run is None:
        return "-"
    if run["status"] in ("skipped", "down"):
        return run["status"]
    if run["msg_per_s"] is None:
        return "FAIL"
    mark = "*" if run["status"] == "capped" else ""
    return f"{run['msg_per_s']:.1f}{mark}"


def rows(runs, memory):
    rate_rows = []
    for r in runs:
        p, x = r.get("petrel"), r.get("postfix")
        q = ratio(p and p["msg_per_s"], x and x["msg_per_s"])
        target = ""
        if r["case"] in RATE_TARGETS:
            t = RATE_TARGETS[r["case"]]
            verdict = "?" if q is None else ("PASS" if q >= t else "FAIL")
            target = f">= {t:g}x {verdict}"
        r["ratio"] = q
        rate_rows.append([r["case"], str(r["messages"]), fmt_rate(p),
                          fmt_rate(x), "-" if q is None else f"{q:.2f}x",
                          target])
    mp, mx = memory.get("petrel"), memory.get("postfix")

    def kib(m):
        if m is None:
            return "-"
        return "FAIL" if m["status"] != "ok" else f"{m['kib_per_session']:.1f}"

    per_p = mp and mp.get("kib_per_session")
    per_x = mx and mx.get("kib_per_session")
    q = ratio(per_p, per_x)
    verdict = "?" if per_p is None else (
        "PASS" if per_p < MEMORY_TARGET_KIB else "FAIL")
    n = (mp or mx or {}).get("sessions", 0)
    mem_rows = [[str(n), kib(mp), kib(mx), "-" if q is None else f"{q:.3f}",
                 f"< {MEMORY_TARGET_KIB:g} KiB {verdict}"]]
    return rate_rows, mem_rows


def relay_rows(relay):
    out = []
    for r in relay:
        p, x = r.get("petrel"), r.get("postfix")
        q = ratio(p and p["msg_per_s"], x and x["msg_per_s"])
        target = ""
        if r["case"] in RELAY_TARGETS:
            t = RELAY_TARGETS[r["case"]]
            verdict = "?" if q is None else ("PASS" if q >= t else "FAIL")
            target = f">= {t:g}x {verdict}"
        r["ratio"] = q
        out.append([r["case"], str(r["messages"]), fmt_rate(p), fmt_rate(x),
                    "-" if q is None else f"{q:.2f}x", target])
    return out


def relay_detail_rows(relay):
    """Per server: submission time, end-to-end time, what the sink saw, CPU."""
    out = []
    for r in relay:
        for server in ("petrel", "postfix"):
            x = r.get(server)
            if x is None:
                continue
            n = x["delivered"]

            def ms(key):
                return f"{1000 * x[key] / n:.2f}" if n else "-"
            out.append([r["case"], server, x["status"],
                        f"{x['submit_seconds']:.2f}", f"{x['seconds']:.2f}",
                        f"{n}/{r['messages']}", str(x["sink_transactions"]),
                        str(x["sink_sessions"]), ms("server_cpu_s"),
                        ms("client_cpu_s"), ms("sink_cpu_s")])
    return out


def cpu_rows(runs):
    """CPU milliseconds per accepted message, server and client side."""
    out = []
    for r in runs:
        row = [r["case"]]
        for server in ("petrel", "postfix"):
            x = r.get(server)
            ok = x and x["accepted"] > 0
            for key in ("server_cpu_s", "client_cpu_s"):
                row.append(f"{1000 * x[key] / x['accepted']:.2f}" if ok else "-")
        out.append(row)
    return out


CPU_HEAD = ["case", "petrel ms/msg", "smtp-source ms/msg (vs petrel)",
            "postfix ms/msg", "smtp-source ms/msg (vs postfix)"]

RATE_HEAD = ["case", "msgs", "petrel msg/s", "postfix msg/s",
             "petrel/postfix", "target"]
MEM_HEAD = ["idle sessions", "petrel KiB/session", "postfix KiB/session",
            "petrel/postfix", "target"]
RELAY_HEAD = ["case", "msgs", "petrel msg/s", "postfix msg/s",
              "petrel/postfix", "target"]
RELAY_DETAIL_HEAD = ["case", "server", "status", "submitted s",
                     "at sink s", "messages at sink", "sink transactions",
                     "sink sessions", "server ms/msg", "smtp-source ms/msg",
                     "smtp-sink ms/msg"]
RELAY_TITLE = "Relay throughput (end to end, via smtp-sink)"


def text_table(head, body):
    widths = [max(len(x) for x in col) for col in zip(head, *body)]
    out = []
    for i, row in enumerate([head] + body):
        cells = [c.ljust(w) if j == 0 else c.rjust(w)
                 for j, (c, w) in enumerate(zip(row, widths))]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def md_table(head, body):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(out)


NOTES = """\
Rates: messages accepted (2xx to the end of DATA) per second of the
smtp-source run, same message count for both servers, one new connection per
message (smtp-source without -d). `*`: the step hit its time cap; the rate
counts the messages accepted before it. `FAIL`: smtp-source stopped on an
error (see the run's output); `down`: the server had died before the step.
Both servers fsync before the 250:
Postfix's cleanup fsyncs every queue file before replying (always on, no
setting turns it off) and the instance puts every message on hold
(`smtpd_end_of_data_restrictions = check_client_access static:HOLD`);
petrel syncs its RocksDB write-ahead log (group commit) and does not deliver.
Memory: private memory (Private_Clean + Private_Dirty, /proc/PID/smaps_rollup)
of all the server's processes with the idle sessions open, minus the same
before they were opened, divided by their number; kernel socket buffers and
page tables are not counted for either server."""

RELAY_NOTES = """\
Relay: a second, fresh instance of each server (new queue; Postfix without
the hold restriction, petrel with delivery on) relays every message to
Postfix's smtp-sink on 127.0.0.1, which accepts everything and stores
nothing. smtp-source submits the messages (20 sessions, recipients
NNNrcpt@example.net); msg/s is messages counted by the sink (end of DATA)
divided by the time from just before smtp-source starts until the sink has
counted the last one (end to end: acceptance, queueing, delivery). Both
servers send one transaction per message (Postfix:
smtp_destination_recipient_limit = 100; petrel:
max_recipients_per_transaction = 100, its default), up to 20 connections to
the sink at a time (both defaults). `*`: the step hit its time cap; the rate
counts the messages the sink had counted by then."""


TLS_TITLE = "Over STARTTLS: 1 KiB x 20 sessions x 1 rcpt, hold queue"
TLS_HEAD = ["server", "handshake ms/session", "msgs", "msg/s", "status"]


def load_tls(path):
    """server, messages asked, handshake ms, ok, seconds, status."""
    out = {}
    if not path or not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if len(p) < 6:
                continue
            ok, secs = int(p[3]), float(p[4])
            out[p[0]] = {"asked": int(p[1]),
                         "handshake_ms": None if p[2] == "-" else float(p[2]),
                         "ok": ok, "secs": secs, "status": p[5],
                         "msg_per_s": ok / secs if secs > 0 else None}
    return out


def tls_rows(tls):
    rows = []
    for server in ("petrel", "postfix"):
        t = tls.get(server)
        if t is None:
            continue
        hs = "-" if t["handshake_ms"] is None else f"{t['handshake_ms']:.2f}"
        rate = "-" if t["msg_per_s"] is None else f"{t['msg_per_s']:.0f}"
        rows.append([server, hs, str(t["ok"]), rate, t["status"]])
    p, x = tls.get("petrel"), tls.get("postfix")
    if p and x:
        q = ratio(p["msg_per_s"], x["msg_per_s"])
        h = ratio(x["handshake_ms"], p["handshake_ms"])
        rows.append(["petrel/Postfix",
                     "-" if h is None else f"{h:.2f}x faster",
                     "", "-" if q is None else f"{q:.2f}x", ""])
    return rows


TLS_NOTES = """bench/tls_load.py (Python asyncio, one process) is the client:
handshake ms/session is greeting, EHLO, STARTTLS, the handshake, EHLO and
QUIT, one session after another; msg/s is 20 sessions each doing STARTTLS
once and then sending messages. The Python client shares the two cores and
bounds the highest rate it can measure, so the ratio understates a large
difference."""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--memory", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--relay")
    ap.add_argument("--tls")
    ap.add_argument("--markdown")
    ap.add_argument("--json")
    args = ap.parse_args()
    runs, memory, meta = load(args)
    relay = load_relay(args.relay)
    rate_rows, mem_rows = rows(runs, memory)
    rel_rows = relay_rows(relay)
    tls = load_tls(args.tls)

    print()
    print("Accepted messages per second (fsync before 250; Postfix: hold queue)")
    print(text_table(RATE_HEAD, rate_rows))
    print()
    print("Resident private memory per idle SMTP session")
    print(text_table(MEM_HEAD, mem_rows))
    print()
    if relay:
        print(RELAY_TITLE)
        print(text_table(RELAY_HEAD, rel_rows))
        print()
        print(text_table(RELAY_DETAIL_HEAD, relay_detail_rows(relay)))
        print()
    if tls:
        print(TLS_TITLE)
        print(text_table(TLS_HEAD, tls_rows(tls)))
        print()
    for k in ("postfix_hold", "petrel_spool", "relay_postfix", "relay_petrel",
              "petrel_exit_load", "petrel_exit_relay", "load_before",
              "load_after", "relay_load_before", "relay_load_after",
              "elapsed_seconds"):
        if k in meta:
            print(f"{k}: {meta[k]}")
    raw = {"meta": meta, "throughput": runs, "memory": memory,
           "relay": relay, "tls": tls}

    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=2)
            f.write("\n")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("# petrel vs Postfix: latest `make bench`\n\n")
            f.write("Written by bench/run; see bench/README.md.\n\n")
            for k, v in meta.items():
                f.write(f"- {k}: {v}\n")
            f.write("\n## Throughput\n\n")
            f.write(md_table(RATE_HEAD, rate_rows) + "\n\n")
            f.write("## Memory per idle session\n\n")
            f.write(md_table(MEM_HEAD, mem_rows) + "\n\n")
            f.write(NOTES + "\n\n")
            if relay:
                f.write(f"## {RELAY_TITLE}\n\n")
                f.write(md_table(RELAY_HEAD, rel_rows) + "\n\n")
                f.write(md_table(RELAY_DETAIL_HEAD,
                                 relay_detail_rows(relay)) + "\n\n")
                f.write(RELAY_NOTES + " submitted s: the smtp-source run "
                        "alone; sink sessions: SMTP sessions the sink saw "
                        "end during the step (fewer than messages: "
                        "connections were reused); ms/msg: CPU time per "
                        "message delivered.\n\n")
            if tls:
                f.write(f"## {TLS_TITLE}\n\n")
                f.write(md_table(TLS_HEAD, tls_rows(tls)) + "\n\n")
                f.write(TLS_NOTES + "\n\n")
            f.write("## CPU time per accepted message\n\n")
            f.write(md_table(CPU_HEAD, cpu_rows(runs)) + "\n\n")
            f.write("User + system CPU of the server's processes and of the "
                    "load generator during each step, divided by the "
                    "messages accepted. On a 2-core machine the two share "
                    "the cores, so a cheap server leaves more CPU to "
                    "smtp-source.\n\n## Raw\n\n```json\n")
            json.dump(raw, f, indent=2)
            f.write("\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
