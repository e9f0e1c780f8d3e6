import sys, os, glob
sys.path.insert(0, "/work/main/tests/delivery")
from test_mx import *
def test_dbg(workdir, start_peer):
    port, (trap, good) = start_peers(start_peer, [(MX_A, "accept", {}), (MX_B, "accept", {})])
    with Dnsmasq(null_mx("nomail.example.net"), host("nomail.example.net", MX_A), mx("example.net","mx.example.net",10), host("mx.example.net", MX_B)) as dns:
        petrel = start_petrel(workdir, dns.server, port)
        content, msgid = make_message()
        submit(petrel, ["u@nomail.example.net", "x@nosuch.example.net", "bob@example.net"], content)
        wait_maildir(workdir, "alice", 1)
        import time; time.sleep(2)
        print(open(maildir_files(workdir, "alice")[0]).read()[:3000])
        print(petrel.cli("queue","list").stdout)
        petrel.stop()
        print(petrel.read_log().decode()[-3000:])
