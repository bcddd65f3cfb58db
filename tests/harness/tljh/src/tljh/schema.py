"""TLJH's config schema and a validator giving jsonschema's messages.

Real TLJH (2.0.0 and later) runs `jsonschema.validate` on the WHOLE config
after every tljh-config edit and before writing it. The double has no
jsonschema, so this module holds the same schema and a validator for the
keywords it uses ($ref, type, properties, additionalProperties, enum, anyOf,
minimum), with jsonschema's message texts and its choice of the "best"
error when several apply. `format` is not checked, as in TLJH (it passes no
format checker).

Quirks of the real schema that are kept on purpose:

* the top level is open: `additionalProperties: False` sits INSIDE
  `properties`, so `foo` or `auth.*` are accepted (and a top-level key
  literally named `additionalProperties` is refused);
* `services` is open except `services.cull`;
* `users.extra_user_groups` only has to be an object;
* 60.0 passes as an integer.

2.0.0 differs from main in `limits`: memory must be a string and cpu an
integer (main also allows null, and any number >= 0 for cpu).
"""

from collections import deque

__all__ = ["schema_for", "first_error"]


def _object(properties, closed=True):
    node = {"type": "object"}
    if closed:
        node["additionalProperties"] = False
    node["properties"] = properties
    return node


def _ref(name):
    return {"$ref": f"#/definitions/{name}"}


def schema_for(limits_any_of):
    """TLJH's schema; `limits_any_of` selects main's `limits` definition."""
    if limits_any_of:
        limits = {
            "memory": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "cpu": {
                "anyOf": [{"type": "number", "minimum": 0}, {"type": "null"}]
            },
        }
    else:
        limits = {"memory": {"type": "string"}, "cpu": {"type": "integer"}}
    strings = {"type": "array", "items": {"type": "string"}}
    definitions = {
        "BaseURL": {"type": "string"},
        "Users": _object(
            {
                "extra_user_groups": {
                    "type": "object",
                    "items": {"type": "string"},
                },
                "allowed": strings,
                "banned": strings,
                "admin": strings,
            }
        ),
        "Services": _object(
            {
                "cull": _object(
                    {
                        "enabled": {"type": "boolean"},
                        "timeout": {"type": "integer"},
                        "every": {"type": "integer"},
                        "concurrency": {"type": "integer"},
                        "users": {"type": "boolean"},
                        "max_age": {"type": "integer"},
                        "remove_named_servers": {"type": "boolean"},
                    }
                )
            },
            closed=False,
        ),
        "HTTP": _object(
            {
                "address": {"type": "string", "format": "ipv4"},
                "port": {"type": "integer"},
            }
        ),
        "HTTPS": _object(
            {
                "enabled": {"type": "boolean"},
                "address": {"type": "string", "format": "ipv4"},
                "port": {"type": "integer"},
                "tls": _ref("TLS"),
                "letsencrypt": _ref("LetsEncrypt"),
            }
        ),
        "LetsEncrypt": _object(
            {
                "email": {"type": "string", "format": "email"},
                "domains": {
                    "type": "array",
                    "items": {"type": "string", "format": "hostname"},
                },
                "staging": {"type": "boolean"},
            }
        ),
        "TLS": _object({"key": {"type": "string"}, "cert": {"type": "string"}}),
        "Limits": dict(_object(limits), description="User CPU and memory limits."),
        "UserEnvironment": _object(
            {
                "default_app": {
                    "type": "string",
                    "enum": ["jupyterlab", "classic"],
                    "default": "jupyterlab",
                }
            }
        ),
        "TraefikAPI": _object(
            {
                "ip": {"type": "string", "format": "ipv4"},
                "port": {"type": "integer"},
                "username": {"type": "string"},
                "password": {"type": "string"},
            }
        ),
    }
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "Littlest JupyterHub YAML config file",
        "definitions": definitions,
        # The misplaced "additionalProperties" is TLJH's, kept on purpose.
        "properties": {
            "additionalProperties": False,
            "base_url": _ref("BaseURL"),
            "user_environment": _ref("UserEnvironment"),
            "users": _ref("Users"),
            "limits": _ref("Limits"),
            "https": _ref("HTTPS"),
            "http": _ref("HTTP"),
            "traefik_api": _ref("TraefikAPI"),
            "services": _ref("Services"),
        },
    }


class _Error:
    def __init__(self, message, keyword, instance, schema, context=()):
        self.message = message
        self.keyword = keyword
        self.instance = instance
        self.schema = schema
        self.path = deque()
        self.context = list(context)


def _is_type(instance, name):
    if name == "object":
        return isinstance(instance, dict)
    if name == "array":
        return isinstance(instance, list)
    if name == "string":
        return isinstance(instance, str)
    if name == "boolean":
        return isinstance(instance, bool)
    if name == "null":
        return instance is None
    if isinstance(instance, bool) or not isinstance(instance, (int, float)):
        return False
    if name == "number":
        return True
    # draft 7: a float with no fractional part is an integer.
    return isinstance(instance, int) or instance.is_integer()


def _matches_type(error):
    expected = error.schema.get("type") if isinstance(error.schema, dict) else None
    if expected is None:
        return True
    names = expected if isinstance(expected, list) else [expected]
    return any(_is_type(error.instance, n) for n in names)


def _errors(instance, schema, root):
    """Every error of `instance` against `schema`, in jsonschema's order."""
    if schema is False:
        yield _Error(
            f"False schema does not allow {instance!r}", None, instance, {}
        )
        return
    if schema is True:
        return
    if "$ref" in schema:
        # draft 7: $ref replaces its sibling keywords.
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        yield from _errors(instance, target, root)
        return
    for keyword, value in schema.items():
        if keyword == "type":
            names = value if isinstance(value, list) else [value]
            if not any(_is_type(instance, n) for n in names):
                shown = ", ".join(repr(n) for n in names)
                yield _Error(
                    f"{instance!r} is not of type {shown}",
                    keyword,
                    instance,
                    schema,
                )
        elif keyword == "enum":
            if instance not in value:
                yield _Error(
                    f"{instance!r} is not one of {value!r}",
                    keyword,
                    instance,
                    schema,
                )
        elif keyword == "minimum":
            if _is_type(instance, "number") and instance < value:
                yield _Error(
                    f"{instance!r} is less than the minimum of {value!r}",
                    keyword,
                    instance,
                    schema,
                )
        elif keyword == "anyOf":
            context = []
            for sub in value:
                found = list(_errors(instance, sub, root))
                if not found:
                    context = None
                    break
                context.extend(found)
            if context is not None:
                yield _Error(
                    f"{instance!r} is not valid under any of the given schemas",
                    keyword,
                    instance,
                    schema,
                    context,
                )
        elif keyword == "additionalProperties" and isinstance(instance, dict):
            if value is False:
                known = schema.get("properties", {})
                extras = sorted((k for k in instance if k not in known), key=str)
                if extras:
                    verb = "was" if len(extras) == 1 else "were"
                    listed = ", ".join(repr(k) for k in extras)
                    yield _Error(
                        "Additional properties are not allowed "
                        f"({listed} {verb} unexpected)",
                        keyword,
                        instance,
                        schema,
                    )
        elif keyword == "properties" and isinstance(instance, dict):
            for name, sub in value.items():
                if name in instance:
                    for error in _errors(instance[name], sub, root):
                        error.path.appendleft(name)
                        yield error
        elif keyword == "items" and isinstance(instance, list):
            for index, item in enumerate(instance):
                for error in _errors(item, value, root):
                    error.path.appendleft(index)
                    yield error


def _relevance(error):
    # jsonschema's `relevance`: higher up in the instance first, then the
    # later path for siblings, then not anyOf/oneOf, then a type mismatch.
    return (
        -len(error.path),
        _comparable(error.path),
        error.keyword not in ("anyOf", "oneOf"),
        False,
        not _matches_type(error),
    )


def _comparable(path):
    return [(isinstance(p, str), p) for p in path]


def first_error(instance, schema):
    """Message of the error jsonschema.validate would raise, or None."""
    errors = list(_errors(instance, schema, schema))
    if not errors:
        return None
    best = errors[0]
    for error in errors[1:]:
        if _relevance(error) > _relevance(best):
            best = error
    # Like jsonschema's best_match: descend into anyOf/oneOf unless the two
    # most relevant alternatives tie.
    while best.context:
        ranked = sorted(best.context, key=_relevance)
        if len(ranked) >= 2 and _relevance(ranked[0]) == _relevance(ranked[1]):
            break
        best = ranked[0]
    return best.message
