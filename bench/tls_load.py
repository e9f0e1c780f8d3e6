#!/usr/bin/python3
"""TLS load for bench/run: messages per second over STARTTLS, and the cost
of a STARTTLS handshake, against one SMTP server on loopback.

  tls_load.py --port P --sessions 20 --messages 2000 --size 1024 \
              --handshakes 200 --cap 25

Phase 1: `--handshakes` sessions one after another, each: greeting, EHLO,
STARTTLS, the TLS handshake, EHLO, QUIT; prints the mean milliseconds per
session. Phase 2: `--sessions` concurrent sessions, each STARTTLS once,
then messages (MAIL, RCPT, DATA pipelined; the text after the 354) until
`--messages` in total are acknowledged or `--cap` seconds pass. Prints one
TSV line: handshake_ms, messages_ok, seconds, status (ok|capped|errors).
The certificate is not checked (the servers use a throwaway one). Bounded
in count and time; loopback only."""
import argparse
import asyncio
import ssl
import sys
import time


async def reply(reader):
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if len(line) < 4 or line[3:4] == b" ":
            return int(line[:3])


async def starttls_session(port, ctx):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await reply(reader) == 220
    writer.write(b"EHLO bench.example\r\n")
    assert await reply(reader) == 250
    writer.write(b"STARTTLS\r\n")
    assert await reply(reader) == 220
    await writer.start_tls(ctx, server_hostname="bench.example.test")
    writer.write(b"EHLO bench.example\r\n")
    assert await reply(reader) == 250
    return reader, writer


async def handshakes(port, ctx, n):
    start = time.monotonic()
    for _ in range(n):
        reader, writer = await starttls_session(port, ctx)
        writer.write(b"QUIT\r\n")
        await reply(reader)
        writer.close()
    return (time.monotonic() - start) * 1000.0 / max(n, 1)


async def sender(port, ctx, body, state, deadline):
    reader, writer = await starttls_session(port, ctx)
    while state["left"] > 0 and time.monotonic() < deadline:
        state["left"] -= 1
        writer.write(b"MAIL FROM:<bench@example.test>\r\n"
                     b"RCPT TO:<sink@example.net>\r\nDATA\r\n")
        codes = [await reply(reader) for _ in range(3)]
        if codes != [250, 250, 354]:
            state["errors"] += 1
            writer.write(b"RSET\r\n")
            await reply(reader)
            continue
        writer.write(body)
        if await reply(reader) == 250:
            state["ok"] += 1
        else:
            state["errors"] += 1
    writer.write(b"QUIT\r\n")
    await reply(reader)
    writer.close()


async def main(a):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    hs = await handshakes(a.port, ctx, a.handshakes)
    line = b"x" * 78 + b"\r\n"
    text = b"Subject: tls bench\r\n\r\n" + line * max(1, a.size // len(line))
    body = text + b".\r\n"
    state = {"left": a.messages, "ok": 0, "errors": 0}
    deadline = time.monotonic() + a.cap
    start = time.monotonic()
    results = await asyncio.gather(
        *(sender(a.port, ctx, body, state, deadline) for _ in range(a.sessions)),
        return_exceptions=True)
    secs = time.monotonic() - start
    failed = [r for r in results if isinstance(r, Exception)]
    status = "errors" if failed or state["errors"] else (
        "capped" if state["ok"] < a.messages else "ok")
    for f in failed[:3]:
        print(f"tls_load: session failed: {f!r}", file=sys.stderr)
    print(f"{hs:.2f}\t{state['ok']}\t{secs:.3f}\t{status}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--handshakes", type=int, default=200)
    ap.add_argument("--cap", type=float, default=25.0)
    asyncio.run(main(ap.parse_args()))
