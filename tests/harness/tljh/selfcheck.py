"""Checks the double's stand-ins against the libraries TLJH really uses.

The double validates with its own code instead of jsonschema and writes
YAML with its own code instead of ruamel.yaml. Run with a Python that has
jsonschema and PyYAML (the test venv has both, through moto):

    .venv/bin/python tests/harness/tljh/selfcheck.py

* every config below gets the same error message (or none) from the
  double's validator as from jsonschema.validate, for both schema
  variants (2.0.0 and main);
* every config the double writes reads back the same with PyYAML and with
  the double's reader.

Prints one line per mismatch and exits 1 if there is any.
"""

import os
import sys

import jsonschema
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from tljh.schema import first_error, schema_for  # noqa: E402
from tljh.yamlfile import dump, load  # noqa: E402

CONFIGS = [
    {},
    None,
    {"foo": 1, "auth": {"type": "x"}},
    {"users": "alice"},
    {"users": {"admin": "alice"}},
    {"users": {"admin": ["a", 1]}},
    {"users": {"foo": 1, "bar": 2}},
    {"users": {"extra_user_groups": []}},
    {"limits": {"memory": 1024}},
    {"limits": {"memory": None, "cpu": None}},
    {"limits": {"cpu": "abc"}},
    {"limits": {"cpu": -1}},
    {"limits": {"cpu": 1.5}},
    {"limits": "x"},
    {"https": {"enabled": "yes"}},
    {"https": {"enabled": 1}},
    {"https": {"letsencrypt": {"domains": "hub.example.org"}}},
    {"https": {"letsencrypt": {"email": 123, "staging": "no"}}},
    {"https": {"tls": {"cert": 1, "foo": 2}}},
    {"http": {"port": "abc"}},
    {"http": {"port": 60.0}},
    {"http": {"port": True}},
    {"http": {"port": "x", "address": 5}},
    {"http": {"port": "x"}, "https": {"port": "y"}},
    {"user_environment": {"default_app": "notebook"}},
    {"user_environment": {"default_app": 5}},
    {"services": {"cull": {"timeout": "x"}}},
    {"services": {"foo": 1}},
    {"services": {"cull": {"foo": 1}}},
    {"additionalProperties": 1},
    {"users": {"admin": ["a", 2, 3]}, "limits": {"memory": 5}},
    {"base_url": 5, "users": {"x": 1}},
    {"traefik_api": {"port": "8099", "ip": 1}},
]

DOCUMENTS = [
    {"users": {"admin": ["alice", "alice"], "allowed": []}, "extra": {}},
    {
        "https": {
            "enabled": True,
            "letsencrypt": {
                "email": "a@example.org",
                "domains": ["hub.example.org", "x.example.org"],
            },
        },
        "http": {"port": 8080},
    },
    {"limits": {"memory": None, "cpu": 1.5}, "nested": [[1, 2], [], {"x": None}]},
    {"list": [{"a": 1, "b": [1, {"q": "w"}]}, "x"]},
    {
        "strings": [
            "yes", "no", "true", "123", "1.5", "", " x", "a: b", "a #b", "-x",
            "- x", "#x", "null", "~", "it's", "tab\there", "nl\nx", "07",
            "1e3", "0x1F", ":", "x:", "@x", "é ü", "1_000", "12:30", "-1",
            ".5", "none", "None", "on", "/opt/tljh", "4G",
        ]
    },
    {"numbers": [0, 7, 1.0, 1.25, 60.0]},
]


def main():
    mismatches = 0
    for any_of in (False, True):
        schema = schema_for(any_of)
        for config in CONFIGS:
            try:
                jsonschema.validate(instance=config, schema=schema)
                expected = None
            except jsonschema.ValidationError as e:
                expected = e.message
            got = first_error(config, schema)
            if got != expected:
                mismatches += 1
                print(f"schema {config!r}: jsonschema {expected!r}, double {got!r}")
    for document in DOCUMENTS:
        text = dump(document)
        for reader, read in (("PyYAML", yaml.safe_load), ("double", load)):
            if read(text) != document:
                mismatches += 1
                print(f"yaml {reader} reads {read(text)!r} from {text!r}")
    print(f"selfcheck: {mismatches} mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
