"""Connection reuse (issue 3): messages to the same next hop share a
connection, each recipient exactly once."""
from conftest import (assert_exactly_once, make_message, start_relay, submit,
                      wait_delivered)


def test_messages_to_one_host_share_a_connection(workdir, start_peer):
    peer = start_peer("accept")
    petrel = start_relay(workdir, {"example.net": peer})
    rcpts = []
    # One SMTP session submits them back to back, so the deliveries overlap
    # with the connection cache's idle time.
    for i in range(8):
        content, _ = make_message(subject=f"reuse {i}")
        r = f"user{i}@example.net"
        qid, refused = submit(petrel, [r], content)
        assert qid and not refused
        rcpts.append(r)
    st = wait_delivered(peer, rcpts)
    petrel.stop()
    st = peer.stats()
    assert_exactly_once(st, rcpts)
    # Not one connection per message: the cache keeps the first one open.
    assert st["connection_count"] < len(rcpts), st["connection_count"]
