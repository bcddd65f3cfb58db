"""The traefik double: the process behind the `traefik` service.

Started as `traefik -c /opt/tljh/state/traefik.toml`, like TLJH's unit. It
reads only the rendered files (traefik.toml and the dynamic rules folder),
never config.yaml, so a port change shows only after `reload proxy`.

* The `http` entry point forwards every request to the hub double's socket;
  while the hub does not answer the client gets 503. With HTTPS on, it
  redirects to the `https` entry point instead (301; 308 for non-GET).
* The `https` entry point serves TLS with, in order of preference: the
  certificate the ACME double obtained for `defaultGeneratedCert` (signed
  by the test CA; by a throw-away CA when staging), the `defaultCertificate`
  files (https.tls.cert/key), else a self-signed "TRAEFIK DEFAULT CERT".
  Like real traefik, the ACME certificate comes in the background after
  start; failures only show in the log.
* Certificates are kept in acme.json and reused while valid for 30 days,
  so a restart does not issue again.

Differences on purpose: an empty address binds 127.0.0.1 (tests stay on
loopback), the API entry point (8099) is not served, and the log is a
short imitation of traefik's.
"""

import base64
import glob
import http.client
import json
import os
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import certs, host
from .hub import SOCKET

_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te"}


def log(level, message, **fields):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    extra = "".join(f" {k}={json.dumps(v)}" for k, v in fields.items())
    print(f"{stamp} {level} {message}{extra}", flush=True)


class _UnixConnection(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(SOCKET)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)

    def log_message(self, fmt, *args):
        pass  # traefik's access log only keeps 5xx answers; see _reply

    def _reply(self, status, body, headers=()):
        # Like traefik: the backend's headers pass through, no Server header
        # of its own.
        self.log_request(status)
        self.send_response_only(status)
        headers = list(headers)
        if not any(name.lower() == "date" for name, _ in headers):
            headers.append(("Date", self.date_time_string()))
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if status >= 500:
            log("INF", "access", status=status, path=self.path)

    def _redirect(self, port):
        name = (self.headers.get("Host") or "127.0.0.1").strip()
        if name.startswith("["):
            name = name[: name.index("]") + 1]
        else:
            name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
        suffix = "" if port == 443 else f":{port}"
        status = 301 if self.command in ("GET", "HEAD") else 308
        text = "Moved Permanently" if status == 301 else "Permanent Redirect"
        location = f"https://{name}{suffix}{self.path}"
        self._reply(status, text.encode(), [("Location", location)])

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        headers["X-Forwarded-For"] = self.client_address[0]
        headers["X-Forwarded-Proto"] = self.server.scheme
        conn = _UnixConnection("hub")
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
        except OSError:
            return self._reply(503, b"Service Unavailable")
        finally:
            conn.close()
        passed = [
            (k, v)
            for k, v in answer.getheaders()
            if k.lower() not in _HOP and k.lower() != "content-length"
        ]
        self._reply(answer.status, data, passed)

    def _handle(self):
        if self.server.redirect_port is not None:
            return self._redirect(self.server.redirect_port)
        return self._forward()

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    redirect_port = None
    scheme = "http"

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        log("DBG", "connection error", error=f"{type(error).__name__}: {error}")


class _TLSServer(_Server):
    scheme = "https"

    def __init__(self, address, tls):
        self.tls = tls
        super().__init__(address, _Handler)

    def get_request(self):
        sock, address = super().get_request()
        wrapped = self.tls.context().wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        )
        return wrapped, address


class _Certificates:
    """The certificate the https entry point serves; swapped at run time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._context = None
        self.serving = None

    def use(self, cert_pem, key_pem, kind, **details):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        with tempfile.TemporaryDirectory() as folder:
            cert = os.path.join(folder, "cert.pem")
            key = os.path.join(folder, "key.pem")
            with open(cert, "w") as f:
                f.write(cert_pem)
            with open(key, "w") as f:
                f.write(key_pem)
            context.load_cert_chain(cert, key)
        with self._lock:
            self._context = context
            self.serving = dict(details, kind=kind)

    def context(self):
        with self._lock:
            return self._context


def _address(text):
    """(bind address, port) of an entry point address like ':80'."""
    name, _, port = text.rpartition(":")
    # Tests share one network: "all interfaces" means loopback here.
    return (name or "127.0.0.1", int(port))


def _load(config_path):
    with open(config_path, "rb") as f:
        static = tomllib.load(f)
    dynamic = {}
    folder = static.get("providers", {}).get("file", {}).get("directory")
    if folder:
        for path in sorted(glob.glob(os.path.join(folder, "*.toml"))):
            with open(path, "rb") as f:
                dynamic.update(tomllib.load(f))
    return static, dynamic


def _stored_certificate(storage, domains):
    try:
        with open(storage) as f:
            store = json.load(f)
    except (OSError, ValueError):
        return None
    wanted = {"main": domains[0], "sans": domains[1:]}
    for entry in store.get("letsencrypt", {}).get("Certificates") or []:
        if entry.get("domain") == wanted:
            cert = base64.b64decode(entry["certificate"]).decode()
            key = base64.b64decode(entry["key"]).decode()
            if certs.valid_for(cert, 30 * 86400):
                return cert, key
    return None


def _store_certificate(storage, email, domains, cert, key):
    try:
        with open(storage) as f:
            store = json.load(f)
    except (OSError, ValueError):
        store = {}
    resolver = store.setdefault("letsencrypt", {})
    resolver["Account"] = {"Email": email, "KeyType": "4096"}
    wanted = {"main": domains[0], "sans": domains[1:]}
    kept = [c for c in resolver.get("Certificates") or [] if c.get("domain") != wanted]
    kept.append(
        {
            "domain": wanted,
            "certificate": base64.b64encode(cert.encode()).decode(),
            "key": base64.b64encode(key.encode()).decode(),
            "Store": "default",
        }
    )
    resolver["Certificates"] = kept
    with open(storage, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(store, f, indent=2)


def _acme(tls, acme, domains, stop, on_change):
    """Obtain (or reuse) the certificate of defaultGeneratedCert."""
    storage = acme.get("storage", "acme.json")
    staging = "staging" in acme.get("caServer", "")
    ca_server = acme.get(
        "caServer", "https://acme-v02.api.letsencrypt.org/directory"
    )
    stored = _stored_certificate(storage, domains)
    if stored:
        tls.use(*stored, "acme", domains=domains, staging=staging)
        on_change()
        return
    if stop.wait(host.setting("ACME_DELAY", 0.0)):
        return
    failure = None
    if host.switch("acme-fails") is not None:
        failure = (
            "acme: error: 400 :: urn:ietf:params:acme:error:connection :: "
            "Timeout during connect (likely firewall problem)"
        )
    else:
        try:
            cert, key = certs.issue(domains, staging=staging)
        except Exception as e:  # openssl missing, no CA: same symptom
            failure = f"{type(e).__name__}: {e}"
    if failure:
        log(
            "ERR",
            "Unable to obtain ACME certificate for domains",
            error=failure,
            ACME_CA=ca_server,
            domains=domains,
            providerName="letsencrypt.acme",
        )
        host.record("acme.jsonl", {"status": "failed", "domains": domains, "error": failure})
        return
    _store_certificate(storage, acme.get("email", ""), domains, cert, key)
    tls.use(cert, key, "acme", domains=domains, staging=staging)
    host.record(
        "acme.jsonl",
        {
            "status": "issued",
            "domains": domains,
            "email": acme.get("email", ""),
            "staging": staging,
        },
    )
    on_change()


def main(argv, version):
    if argv[:1] == ["version"]:
        print(f"Version:      {version}")
        print("Codename:     hubform-double")
        print("Go version:   go1.22.7")
        print("Built:        2024-09-19T14:18:21Z")
        print("OS/Arch:      linux/amd64")
        return 0
    config_path = "traefik.toml"
    for i, arg in enumerate(argv):
        if arg in ("-c", "--configfile", "--configFile") and i + 1 < len(argv):
            config_path = argv[i + 1]
        elif arg.lower().startswith("--configfile="):
            config_path = arg.split("=", 1)[1]

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    log("INF", f"Traefik version {version} built on 2024-09-19T14:18:21Z")
    static, dynamic = _load(config_path)
    log("INF", f"Configuration loaded from file: {os.path.abspath(config_path)}")
    entry = static.get("entryPoints", {})
    redirect = entry.get("http", {}).get("http", {}).get("redirections")
    store = dynamic.get("tls", {}).get("stores", {}).get("default", {})
    tls = _Certificates()
    servers = []

    try:
        http_server = _Server(_address(entry["http"]["address"]), _Handler)
        servers.append(http_server)
        if "https" in entry:
            https_address = _address(entry["https"]["address"])
            if redirect:
                http_server.redirect_port = https_address[1]
            tls.use(*certs.default_cert(), "default")
            files = store.get("defaultCertificate")
            if files:
                try:
                    with open(files["certFile"]) as f:
                        cert = f.read()
                    with open(files["keyFile"]) as f:
                        key = f.read()
                    tls.use(cert, key, "file", certFile=files["certFile"])
                except (OSError, ssl.SSLError) as e:
                    log("ERR", "Unable to add a certificate to the store", error=str(e))
            servers.append(_TLSServer(https_address, tls))
    except OSError as e:
        log("ERR", "error while building entryPoint", error=f"listen tcp: {e}")
        return 1

    def report():
        host.write_json(
            "proxy-loaded.json",
            dict(
                host.now(),
                pid=os.getpid(),
                version=version,
                config_file=os.path.abspath(config_path),
                http=entry.get("http", {}).get("address"),
                https=entry.get("https", {}).get("address"),
                redirect_to_https=bool(redirect),
                tls=tls.serving,
            ),
        )

    report()
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    generated = store.get("defaultGeneratedCert")
    resolvers = static.get("certificatesResolvers", {})
    if "https" in entry and generated:
        acme = resolvers.get(generated.get("resolver"), {}).get("acme")
        domain = generated.get("domain", {})
        domains = [domain.get("main")] + list(domain.get("sans") or [])
        if acme and domains[0]:
            threading.Thread(
                target=_acme, args=(tls, acme, domains, stop, report), daemon=True
            ).start()

    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()
    log("INF", "Shutting down")
    return 0
