"""The jupyterhub double: the process behind the `jupyterhub` service.

It reads TLJH's merged config once at start (as the real hub's
jupyterhub_config.py does), records what it read in
/var/lib/hubform-double/hub-loaded.json, and then answers HTTP on a unix
socket that the traefik double forwards to:

* <base_url>hub/api -> 200 {"version": "<jupyterhub version>"}
* <base_url>hub/health -> 200
* <base_url> -> 302 to <base_url>hub/, which redirects to the login page
* <base_url>hub/login -> 200, a small HTML page
* anything else -> 404

A unix socket instead of TLJH's 127.0.0.1:15001, because parallel test
hosts share one network. HUB_START_DELAY (host.env) delays the first
answer; the switch `hub-never-ready` makes the hub never answer.
"""

import json
import os
import signal
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote, urlsplit

from . import host

SOCKET = os.path.join(host.RUN, "jupyterhub.sock")


def _log(level, message):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    print(f"[{level} {stamp} JupyterHub] {message}", flush=True)


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TornadoServer/6.4"
    sys_version = ""

    def address_string(self):
        return self.headers.get("X-Forwarded-For", "proxy") if self.headers else "proxy"

    def log_message(self, fmt, *args):
        _log("I", f"{fmt % args}")

    def _send(self, status, body=b"", content_type="text/plain", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self):
        base = self.server.base_url
        path = urlsplit(self.path).path
        if path in (base + "hub/api", base + "hub/api/"):
            body = json.dumps({"version": self.server.version}).encode()
            return self._send(200, body, "application/json")
        if path == base + "hub/health":
            return self._send(200)
        if path in (base, base.rstrip("/")):
            return self._send(302, headers=[("Location", base + "hub/")])
        if path in (base + "hub", base + "hub/"):
            target = f"{base}hub/login?next={quote(base + 'hub/', safe='')}"
            return self._send(302, headers=[("Location", target)])
        if path == base + "hub/login":
            page = (
                "<!DOCTYPE HTML><html><head><title>JupyterHub</title></head>"
                "<body><form method='post'>Sign in</form></body></html>"
            ).encode()
            return self._send(200, page, "text/html; charset=UTF-8")
        body = json.dumps({"status": 404, "message": "Not Found"}).encode()
        return self._send(404, body, "application/json")

    do_GET = do_HEAD = do_POST = _route


def _base_url(config):
    base = str(config.get("base_url") or "/")
    if not base.startswith("/"):
        base = "/" + base
    if not base.endswith("/"):
        base += "/"
    return base


def main(argv, version):
    from tljh.config import CONFIG_FILE, get_current_config
    from tljh.configurer import load_config

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    config = load_config()
    _log("I", f"Running JupyterHub version {version}")
    _log("I", "Using Authenticator: " + str(config["auth"]["type"]))
    _log("I", "Using Spawner: tljh.user_creating_spawner.UserCreatingSpawner")
    host.write_json(
        "hub-loaded.json",
        dict(
            host.now(),
            pid=os.getpid(),
            version=version,
            config=config,
            file=get_current_config(CONFIG_FILE),
            argv=list(argv),
        ),
    )

    if host.switch("hub-never-ready") is not None:
        _log("W", "hub-never-ready is set: not answering")
        stop.wait()
        return 0
    stop.wait(host.setting("HUB_START_DELAY", 0.0))
    if stop.is_set():
        return 0

    os.makedirs(host.RUN, mode=0o700, exist_ok=True)
    try:
        os.unlink(SOCKET)
    except FileNotFoundError:
        pass
    server = _Server(SOCKET, _Handler)
    os.chmod(SOCKET, 0o600)
    server.base_url = _base_url(config)
    server.version = version
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = config["http"]["port"]
    _log("I", f"JupyterHub is now running at http://:{port}{server.base_url}")

    stop.wait()
    server.shutdown()
    try:
        os.unlink(SOCKET)
    except FileNotFoundError:
        pass
    _log("I", "Cleaning up single-user servers... (cleanup_servers=False)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], "5.2.1"))
