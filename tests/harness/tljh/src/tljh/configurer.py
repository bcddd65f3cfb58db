"""TLJH's config defaults and how config.yaml is merged over them.

The hub reads this merged view when it starts; `tljh-config reload` and the
proxy config renderer read it too. `tljh-config show` does NOT: it prints
the file alone.

One deliberate difference: the defaults of `http.port` and `https.port` are
the test host's stand-ins for 80 and 443 (HTTP_PORT / HTTPS_PORT in
/etc/hubform-double/host.env), because parallel test hosts share one
network. A host without those settings gets 80 and 443 like real TLJH.
"""

import copy
import os

from hubform_double import host

from .config import CONFIG_FILE, STATE_DIR
from .yamlfile import load as _load_yaml


def defaults():
    """The config a TLJH with an empty config.yaml runs with."""
    return {
        "base_url": "/",
        "auth": {
            "type": "firstuseauthenticator.FirstUseAuthenticator",
            "FirstUseAuthenticator": {"create_users": False},
        },
        "users": {
            "allowed": [],
            "banned": [],
            "admin": [],
            "extra_user_groups": {},
        },
        "limits": {"memory": None, "cpu": None},
        "http": {"address": "", "port": host.setting("HTTP_PORT", 80)},
        "https": {
            "enabled": False,
            "address": "",
            "port": host.setting("HTTPS_PORT", 443),
            "tls": {"cert": "", "key": ""},
            "letsencrypt": {"email": "", "domains": [], "staging": False},
        },
        "traefik_api": {
            "ip": "127.0.0.1",
            "port": 8099,
            "username": "api_admin",
            "password": "",
        },
        "user_environment": {"default_app": "jupyterlab"},
        "services": {
            "cull": {
                "enabled": True,
                "timeout": 600,
                "every": 60,
                "concurrency": 5,
                "users": False,
                "max_age": 0,
                "remove_named_servers": False,
            }
        },
    }


def merge(base, overrides):
    """Merge `overrides` into `base` recursively; overrides win."""
    for key, value in overrides.items():
        if isinstance(base.get(key), dict) and isinstance(value, dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def load_secrets():
    """The traefik API password the installer generated, if any."""
    path = os.path.join(STATE_DIR, "traefik-api.secret")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {"traefik_api": {"password": f.read()}}


def load_config(config_file=CONFIG_FILE):
    """Defaults, then secrets, then config.yaml (as TLJH merges them)."""
    overrides = {}
    if os.path.exists(config_file):
        with open(config_file) as f:
            overrides = _load_yaml(f.read())
    config = merge(defaults(), load_secrets())
    # Like TLJH, an empty config.yaml (null document) breaks the merge.
    return merge(config, copy.deepcopy(overrides))
