"""Certificates for the traefik double, made with the openssl command.

* `default_cert`: what traefik serves when it has nothing better, a
  self-signed certificate whose subject is "TRAEFIK DEFAULT CERT".
* `issue`: the ACME double. Instead of Let's Encrypt, the test CA that the
  set-up generated (and the provision script put in /etc/hubform-double/ca
  and in the host's trust store) signs a certificate for the domains. With
  `staging`, a throw-away CA that nobody trusts signs it, as Let's
  Encrypt's staging CA would.
"""

import os
import secrets
import subprocess
import tempfile

from . import host


def _openssl(*args, cwd=None):
    subprocess.run(
        ["openssl", *args],
        check=True,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _key_and_request(folder, subject, sans):
    ext = "subjectAltName=" + ",".join(f"DNS:{name}" for name in sans)
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", "key.pem", "-out", "req.pem", "-subj", subject,
        "-addext", ext,
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "keyUsage=critical,digitalSignature",
        "-addext", "extendedKeyUsage=serverAuth",
        cwd=folder,
    )


def _read_pair(folder):
    with open(os.path.join(folder, "cert.pem")) as f:
        cert = f.read()
    with open(os.path.join(folder, "key.pem")) as f:
        key = f.read()
    return cert, key


def default_cert():
    """(cert PEM, key PEM) of a fresh "TRAEFIK DEFAULT CERT"."""
    with tempfile.TemporaryDirectory() as folder:
        name = f"{secrets.token_hex(16)}.{secrets.token_hex(16)}.traefik.default"
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:prime256v1", "-nodes", "-days", "365",
            "-keyout", "key.pem", "-out", "cert.pem",
            "-subj", "/CN=TRAEFIK DEFAULT CERT",
            "-addext", f"subjectAltName=DNS:{name}",
            cwd=folder,
        )
        return _read_pair(folder)


def _sign(folder, ca_cert, ca_key, days):
    _openssl(
        "x509", "-req", "-in", "req.pem", "-CA", ca_cert, "-CAkey", ca_key,
        "-set_serial", str(int.from_bytes(secrets.token_bytes(8), "big")),
        "-days", str(days), "-copy_extensions", "copyall", "-out", "cert.pem",
        cwd=folder,
    )


def issue(domains, staging=False):
    """(cert PEM, key PEM) for `domains` (the first is the subject)."""
    with tempfile.TemporaryDirectory() as folder:
        _key_and_request(folder, f"/CN={domains[0]}", domains)
        if staging:
            _openssl(
                "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
                "-keyout", "ca.key", "-out", "ca.pem",
                "-subj", "/CN=(STAGING) hubform test ACME",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign",
                cwd=folder,
            )
            _sign(folder, "ca.pem", "ca.key", 90)
        else:
            ca_cert = os.path.join(host.CA_DIR, "ca.pem")
            ca_key = os.path.join(host.CA_DIR, "ca.key")
            if not (os.path.exists(ca_cert) and os.path.exists(ca_key)):
                raise OSError(f"no test CA in {host.CA_DIR}")
            _sign(folder, ca_cert, ca_key, 90)
        return _read_pair(folder)


def valid_for(cert_pem, seconds):
    """True if the PEM certificate is still valid `seconds` from now."""
    proc = subprocess.run(
        ["openssl", "x509", "-noout", "-checkend", str(int(seconds))],
        input=cert_pem,
        capture_output=True,
        text=True,
    )
    return proc.returncode == 0
