"""Rendering the proxy's config, as TLJH's traefik.py does.

`ensure_traefik_config` runs at install time and on `tljh-config reload
proxy`. It refuses an incomplete HTTPS setup with TLJH's two ValueError
messages, then writes state/traefik.toml (static config, merged with
config/traefik_config.d/*.toml) and state/rules/dynamic.toml (TLS). The
traefik double reads only these files, so like the real traefik it does
not see config.yaml edits until the proxy is reloaded.
"""

import glob
import os
import tomllib

from .config import CONFIG_DIR
from .configurer import load_config, merge


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def dump_toml(data, prefix=()):
    """TOML text for nested dicts of scalars and lists."""
    lines = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    if prefix and (scalars or not tables):
        lines.append("[" + ".".join(prefix) + "]")
    for key, value in scalars.items():
        lines.append(f"{key} = {_toml_value(value)}")
    if lines:
        lines.append("")
    for key, value in tables.items():
        lines.append(dump_toml(value, prefix + (key,)))
    return "\n".join(lines)


def _static(config, dynamic_dir):
    http, https = config["http"], config["https"]
    letsencrypt = https["letsencrypt"]
    timeouts = {"respondingTimeouts": {"idleTimeout": "10m"}}
    entry_points = {
        "http": {
            "address": f"{http['address']}:{http['port']}",
            "transport": dict(timeouts),
        }
    }
    if https["enabled"]:
        entry_points["http"]["http"] = {
            "redirections": {"entryPoint": {"to": "https", "scheme": "https"}}
        }
        entry_points["https"] = {
            "address": f"{https['address']}:{https['port']}",
            "http": {"tls": {"options": "default"}},
            "transport": dict(timeouts),
        }
    entry_points["auth_api"] = {
        "address": f"localhost:{config['traefik_api']['port']}"
    }
    static = {
        "api": {},
        "log": {"level": "INFO"},
        "accessLog": {
            "format": "json",
            "filters": {"statusCodes": ["500-999"]},
        },
        "entryPoints": entry_points,
    }
    if https["enabled"] and letsencrypt["email"] and letsencrypt["domains"]:
        acme = {"email": letsencrypt["email"], "storage": "acme.json"}
        if letsencrypt["staging"]:
            acme["caServer"] = (
                "https://acme-staging-v02.api.letsencrypt.org/directory"
            )
        acme["tlsChallenge"] = {}
        static["certificatesResolvers"] = {"letsencrypt": {"acme": acme}}
    static["providers"] = {
        "providersThrottleDuration": "0s",
        "file": {"directory": dynamic_dir, "watch": True},
    }
    return static


def _dynamic(config):
    https = config["https"]
    if not https["enabled"]:
        return {}
    tls = https["tls"]
    letsencrypt = https["letsencrypt"]
    stores = {}
    if tls["cert"]:
        stores["defaultCertificate"] = {
            "certFile": tls["cert"],
            "keyFile": tls["key"],
        }
    if letsencrypt["email"] and letsencrypt["domains"]:
        domains = list(letsencrypt["domains"])
        stores["defaultGeneratedCert"] = {
            "resolver": "letsencrypt",
            "domain": {"main": domains[0], "sans": domains[1:]},
        }
    options = {
        "minVersion": "VersionTLS12",
        "cipherSuites": [
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        ],
    }
    dynamic = {"tls": {"options": {"default": options}}}
    if stores:
        dynamic["tls"]["stores"] = {"default": stores}
    return dynamic


def _write_private(path, text):
    with open(path, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def ensure_traefik_config(state_dir):
    """Render traefik.toml and rules/*.toml from the merged config."""
    config = load_config()
    https = config["https"]
    letsencrypt = https["letsencrypt"]
    tls = https["tls"]
    if https["enabled"]:
        if not tls["cert"] and not letsencrypt["email"]:
            raise ValueError(
                "To enable https, you must set tls.cert+key or "
                "letsencrypt.email+domains"
            )
        if (letsencrypt["email"] and not letsencrypt["domains"]) or (
            letsencrypt["domains"] and not letsencrypt["email"]
        ):
            raise ValueError("Both email and domains must be set for letsencrypt")

    extra_dir = os.path.join(CONFIG_DIR, "traefik_config.d")
    dynamic_dir = os.path.join(state_dir, "rules")
    os.makedirs(extra_dir, mode=0o700, exist_ok=True)
    os.makedirs(dynamic_dir, mode=0o700, exist_ok=True)

    static = _static(config, dynamic_dir)
    for extra in sorted(glob.glob(os.path.join(extra_dir, "*.toml"))):
        with open(extra, "rb") as f:
            merge(static, tomllib.load(f))

    _write_private(os.path.join(state_dir, "traefik.toml"), dump_toml(static))
    _write_private(os.path.join(dynamic_dir, "dynamic.toml"), dump_toml(_dynamic(config)))
    _write_private(os.path.join(dynamic_dir, "rules.toml"), "")
    with open(os.path.join(state_dir, "acme.json"), "a") as f:
        os.fchmod(f.fileno(), 0o600)
