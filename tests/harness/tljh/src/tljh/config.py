"""The tljh-config double: TLJH's command line for config.yaml.

Reproduces tljh/config.py of TLJH (2.0.0 and main; 1.0.0 had no validation
and no lock):

* root only: otherwise two lines on stderr and exit 1;
* `--config-path`, `--validate`, `--no-validate` go BEFORE the subcommand
  (after it they are argparse errors, exit 2);
* `show` prints the file alone, never the merged defaults;
* `set` creates missing parents and REPLACES a parent that is not a mapping;
* `unset` removes the key, then parents left empty; a missing key is a
  ValueError traceback (exit 1);
* `add-item` appends, with no de-duplication;
* `remove-item` removes the first equal item; a missing list is
  "ValueError: <key> is not a list", a missing item a bare ValueError;
* every edit validates the WHOLE resulting config and writes only if it is
  valid; edits never restart anything;
* `reload hub` restarts the hub and then polls it once a second with no
  timeout, printing "Hub not ready: ..."; `reload proxy` re-renders the
  proxy config (which can raise ValueError) and restarts traefik.

Uncaught errors surface as Python tracebacks, as in TLJH. Like the real
script, stdout is block-buffered when it is not a terminal.

Added for tests (not in TLJH): every call is recorded in
/var/lib/hubform-double/commands.jsonl, every reload in reloads.jsonl, and
the switch /etc/hubform-double/hang-reload-hub makes `reload hub` poll a
hub it never reaches.
"""

import argparse
import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from copy import deepcopy

from hubform_double import host

from .yamlfile import dump as _dump_yaml
from .yamlfile import load as _load_yaml

INSTALL_PREFIX = os.environ.get("TLJH_INSTALL_PREFIX", "/opt/tljh")
HUB_ENV_PREFIX = os.path.join(INSTALL_PREFIX, "hub")
USER_ENV_PREFIX = os.path.join(INSTALL_PREFIX, "user")
STATE_DIR = os.path.join(INSTALL_PREFIX, "state")
CONFIG_DIR = os.path.join(INSTALL_PREFIX, "config")
CONFIG_FILE = os.path.join(CONFIG_DIR, "config.yaml")


def _features():
    return host.Features(host.installed_version())


# --- editing a config in memory ---------------------------------------------


def _is_dict(item):
    return isinstance(item, Mapping)


def _is_list(item):
    # TLJH tests for a Sequence, so a string counts as a "list" here: adding
    # to a string value then fails with AttributeError, as in TLJH.
    return isinstance(item, Sequence)


def _parent(config, components, create):
    """The mapping holding the last component; creates/replaces parents."""
    node = config
    for part in components[:-1]:
        if create:
            if part not in node or not _is_dict(node[part]):
                node[part] = {}
        node = node[part]
    return node


def set_item_in_config(config, property_path, value):
    """A copy of config with the dotted key set to value."""
    config = deepcopy(config)
    components = property_path.split(".")
    _parent(config, components, create=True)[components[-1]] = value
    return config


def unset_item_from_config(config, property_path):
    """A copy of config without the dotted key; empty parents pruned."""
    config = deepcopy(config)
    components = property_path.split(".")
    node = config
    for part in components[:-1]:
        if part not in node:
            raise ValueError(f"{property_path} does not exist in config!")
        node = node[part]
    if components[-1] not in node:
        raise ValueError(f"{property_path} does not exist in config!")
    del node[components[-1]]

    # Parents that became empty go too, deepest first.
    for depth in range(len(components) - 1, 0, -1):
        holder = config
        for part in components[: depth - 1]:
            holder = holder[part]
        if holder[components[depth - 1]] != {}:
            break
        del holder[components[depth - 1]]
    return config


def add_item_to_config(config, property_path, value):
    """A copy of config with value appended to the list at the dotted key."""
    config = deepcopy(config)
    components = property_path.split(".")
    node = _parent(config, components, create=True)
    if components[-1] not in node or not _is_list(node[components[-1]]):
        node[components[-1]] = []
    node[components[-1]].append(value)
    return config


def remove_item_from_config(config, property_path, value):
    """A copy of config without the first item equal to value."""
    config = deepcopy(config)
    components = property_path.split(".")
    node = config
    for part in components[:-1]:
        if part not in node or not _is_dict(node[part]):
            raise ValueError(f"{property_path} does not exist in config!")
        node = node[part]
    items = node.get(components[-1]) if _is_dict(node) else None
    if components[-1] not in node or not _is_list(items):
        raise ValueError(f"{property_path} is not a list")
    if isinstance(items, str):
        items.remove(value)  # AttributeError, as in TLJH
    for index, item in enumerate(items):
        if item == value:
            del items[index]
            return config
    # ruamel's sequence raises ValueError without a message here.
    raise ValueError


def parse_value(value_str):
    """A command-line value as TLJH types it."""
    if _features().none_is_null and value_str.lower() == "none":
        return None
    if re.match(r"^\d+$", value_str):
        return int(value_str)
    if re.match(r"^\d+\.\d*$", value_str):
        return float(value_str)
    if value_str.lower() == "true":
        return True
    if value_str.lower() == "false":
        return False
    return value_str


# --- the file ------------------------------------------------------------------


def validate_config(config, validate):
    """Exit 1 with TLJH's message if config breaks the schema."""
    features = _features()
    if not features.validation or not validate:
        return
    from .schema import first_error, schema_for

    message = first_error(config, schema_for(features.limits_any_of))
    if message is None:
        return
    print(
        f"Config validation error: {message}.\n"
        "You can still apply this change without validation by re-running "
        "your command with the --no-validate flag.\n"
        "If you think this validation error is incorrect, please report it "
        "to https://github.com/jupyterhub/the-littlest-jupyterhub/issues.",
        file=sys.stderr,
    )
    sys.exit(1)


@contextmanager
def config_file_lock(config_path, timeout=1):
    """Hold `<config>.lock` while editing, as TLJH's FileLock does."""
    if not _features().lock:
        yield
        return
    lock_file = f"{config_path}.lock"
    with open(lock_file, "a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    print(
                        f"Another instance of tljh-config holds the lock "
                        f"{lock_file}.",
                        file=sys.stderr,
                    )
                    sys.exit(1)
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def get_current_config(config_path):
    """The parsed file; {} when it does not exist."""
    try:
        with open(config_path) as f:
            return _load_yaml(f.read())
    except FileNotFoundError:
        return {}


def _write(config_path, config):
    with open(config_path, "w") as f:
        f.write(_dump_yaml(config))


def show_config(config_path):
    sys.stdout.write(_dump_yaml(get_current_config(config_path)))


def _edit(config_path, change, validate):
    with config_file_lock(config_path):
        config = change(get_current_config(config_path))
        validate_config(config, validate)
        _write(config_path, config)


# --- reloads -------------------------------------------------------------------


def _service_active(name):
    # TLJH does not capture the output: "active" lands on stdout.
    try:
        subprocess.run(["systemctl", "is-active", name], check=True)
        return True
    except subprocess.CalledProcessError:
        return False


def _refused(address, port, url):
    return (
        f"HTTPConnectionPool(host='{address}', port={port}): Max retries "
        f"exceeded with url: {url} (Caused by NewConnectionError("
        "'<urllib3.connection.HTTPConnection object>: Failed to establish a "
        "new connection: [Errno 111] Connection refused'))"
    )


def check_hub_ready():
    """True once GET <http>/hub/api answers 200 (redirects followed)."""
    import ssl
    import urllib.error
    import urllib.request

    from .configurer import load_config

    config = load_config()
    base_url = config["base_url"]
    base_url = base_url[:-1] if base_url[-1] == "/" else base_url
    address = config["http"]["address"] or "127.0.0.1"
    port = config["http"]["port"]
    path = f"{base_url}/hub/api"
    if host.switch("hang-reload-hub") is not None:
        # Test switch: the poll never reaches the hub (TLJH issue #903).
        print(f"Hub not ready: {_refused(address, port, path)}")
        return False
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=unverified)
    )
    try:
        with opener.open("http://%s:%d%s" % (address, port, path)) as r:
            status = r.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ConnectionRefusedError):
            print(f"Hub not ready: {_refused(address, port, path)}")
        else:
            print(f"Hub not ready: {reason}")
        return False
    if status != 200:
        print(f"Hub not ready: (HTTP status {status})")
    return status == 200


def reload_component(component):
    """Restart hub or proxy and wait for it, recording the reload."""
    from . import traefik

    try:
        snapshot = get_current_config(CONFIG_FILE)
    except Exception as e:  # an unreadable file is the reload's problem
        snapshot = {"unreadable": str(e)}
    host.record(
        "reloads.jsonl",
        {"kind": component, "status": "started", "config": snapshot},
    )
    try:
        if component == "hub":
            subprocess.run(["systemctl", "restart", "jupyterhub"], check=True)
            while not _service_active("jupyterhub"):
                time.sleep(1)
            while not check_hub_ready():
                time.sleep(1)
            print("Hub reload with new configuration complete")
        elif component == "proxy":
            traefik.ensure_traefik_config(STATE_DIR)
            subprocess.run(["systemctl", "restart", "traefik"], check=True)
            while not _service_active("traefik"):
                time.sleep(1)
            print("Proxy reload with new configuration complete")
    except BaseException as e:
        host.record(
            "reloads.jsonl",
            {
                "kind": component,
                "status": "failed",
                "error": f"{type(e).__name__}: {e}",
                "config": snapshot,
            },
        )
        raise
    host.record(
        "reloads.jsonl",
        {"kind": component, "status": "complete", "config": snapshot},
    )


# --- command line ----------------------------------------------------------


def _parser(features):
    argparser = argparse.ArgumentParser()
    argparser.add_argument(
        "--config-path", default=CONFIG_FILE, help="Path to TLJH config.yaml file"
    )
    if features.validation:
        argparser.add_argument(
            "--validate", action="store_true", help="Validate the TLJH config"
        )
        argparser.add_argument(
            "--no-validate",
            dest="validate",
            action="store_false",
            help="Do not validate the TLJH config",
        )
    argparser.set_defaults(validate=True)
    sub = argparser.add_subparsers(dest="action")
    sub.add_parser("show", help="Show current configuration")
    unset = sub.add_parser("unset", help="Unset a configuration property")
    unset.add_argument("key_path", help="Dot separated path to configuration key to unset")
    setp = sub.add_parser("set", help="Set a configuration property")
    setp.add_argument("key_path", help="Dot separated path to configuration key to set")
    setp.add_argument("value", help="Value to set the configuration key to")
    add = sub.add_parser(
        "add-item", help="Add a value to a list for a configuration property"
    )
    add.add_argument(
        "key_path", help="Dot separated path to configuration key to add value to"
    )
    add.add_argument("value", help="Value to add to the configuration key")
    remove = sub.add_parser(
        "remove-item", help="Remove a value from a list for a configuration property"
    )
    remove.add_argument(
        "key_path",
        help="Dot separated path to configuration key to remove value from",
    )
    remove.add_argument("value", help="Value to remove from key_path")
    reload = sub.add_parser(
        "reload", help="Reload a component to apply configuration change"
    )
    reload.add_argument(
        "component",
        choices=("hub", "proxy"),
        help="Which component to reload",
        default="hub",
        nargs="?",
    )
    return argparser


def _run(argv):
    features = _features()
    argparser = _parser(features)
    args = argparser.parse_args(argv)
    path = args.config_path
    if args.action == "show":
        show_config(path)
    elif args.action == "set":
        value = parse_value(args.value)
        _edit(path, lambda c: set_item_in_config(c, args.key_path, value), args.validate)
    elif args.action == "unset":
        _edit(path, lambda c: unset_item_from_config(c, args.key_path), args.validate)
    elif args.action == "add-item":
        value = parse_value(args.value)
        _edit(path, lambda c: add_item_to_config(c, args.key_path, value), args.validate)
    elif args.action == "remove-item":
        value = parse_value(args.value)
        _edit(
            path,
            lambda c: remove_item_from_config(c, args.key_path, value),
            args.validate,
        )
    elif args.action == "reload":
        reload_component(args.component)
    else:
        argparser.print_help()


def main(argv=None):
    if os.geteuid() != 0:
        host.record(
            "commands.jsonl",
            {"tool": "tljh-config", "argv": sys.argv[1:], "rc": 1},
        )
        print("tljh-config needs root privileges to run", file=sys.stderr)
        print(
            "Try using sudo before the tljh-config command you wanted to run",
            file=sys.stderr,
        )
        sys.exit(1)
    if argv is None:
        argv = sys.argv[1:]

    started = time.monotonic()

    def record(rc):
        host.record(
            "commands.jsonl",
            {
                "tool": "tljh-config",
                "argv": list(argv),
                "rc": rc,
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    def on_signal(signum, _frame):
        # Record a call that is killed (a reload that hangs), then die of
        # the same signal as the real script would.
        record(-signum)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    try:
        _run(argv)
    except SystemExit as e:
        code = e.code
        record(code if isinstance(code, int) else (0 if code is None else 1))
        raise
    except BaseException:
        record(1)
        raise
    record(0)
