"""Test certificates made at test time with the openssl command: a test CA,
server certificates signed by it (valid, expired, for another name) and a
self-signed one. EC P-256 keys: fast to make."""
import os
import subprocess

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _run(*args, cwd):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


def make_ca(d, name="petrel test CA"):
    """Returns (ca.pem, ca.key) in directory d."""
    _run("req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return os.path.join(d, "ca.pem"), os.path.join(d, "ca.key")


def make_cert(d, stem, dns_name, ca=None, expired=False):
    """A certificate for dns_name: signed by ca (a (pem, key) pair) or
    self-signed; expired=True gives one that ended yesterday. Returns
    (cert path, key path)."""
    key, pem = f"{stem}.key", f"{stem}.pem"
    if ca is None:
        _run("req", "-x509", *_EC, "-keyout", key, "-out", pem,
             "-days", "-1" if expired else "2", "-subj", f"/CN={dns_name}",
             "-addext", f"subjectAltName=DNS:{dns_name}", cwd=d)
    else:
        ext = os.path.join(d, f"{stem}.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName=DNS:{dns_name}\nextendedKeyUsage=serverAuth\n")
        _run("req", *_EC, "-keyout", key, "-out", f"{stem}.csr", "-subj", f"/CN={dns_name}",
             cwd=d)
        _run("x509", "-req", "-in", f"{stem}.csr", "-CA", ca[0], "-CAkey", ca[1],
             "-CAcreateserial", "-days", "-1" if expired else "2", "-out", pem,
             "-extfile", ext, cwd=d)
    return os.path.join(d, pem), os.path.join(d, key)


def fingerprint(pem_path):
    r = subprocess.run(["openssl", "x509", "-in", pem_path, "-noout", "-fingerprint",
                        "-sha256"], check=True, capture_output=True, text=True)
    return r.stdout.strip().split("=", 1)[1]
