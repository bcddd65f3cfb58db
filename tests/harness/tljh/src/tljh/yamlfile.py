"""Reading and writing config.yaml the way TLJH's round-trip YAML does.

Real TLJH uses ruamel.yaml in round-trip mode. The double has no third-party
packages, so this module carries a small YAML reader and writer for the
shapes a TLJH config takes: block mappings and sequences, flow collections,
plain and quoted scalars, comments.

What `dump` reproduces on purpose (it is what `tljh-config show` prints):

* block style, two-space indentation, keys in insertion order;
* sequence dashes NOT indented under their key (`domains:` then
  `- hub.example.org` at the key's indentation);
* an empty root prints `{}`, empty nested containers `{}` / `[]`;
* a null value prints as an empty value (`memory:`), a null root as
  `null` followed by the document end marker `...`;
* strings that would read back as something else are single-quoted.

Differences from ruamel: comments and the original quoting of a file are not
kept when tljh-config rewrites it, long strings are not folded at 80
columns, and 1.1-style booleans (`yes`, `on`) are quoted to be safe for
any reader (values only; keys follow the 1.2 rules).
"""

import re

__all__ = ["YamlError", "load", "dump"]


class YamlError(ValueError):
    """A config file the double cannot read."""

    def __init__(self, message, line=None):
        if line is not None:
            message = f"{message} (line {line})"
        super().__init__(message)


# --- scalars -----------------------------------------------------------------

# YAML 1.2 core schema, which ruamel's round-trip loader follows.
_NULL = re.compile(r"^(?:~|null|Null|NULL)?$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
# Forms other readers (YAML 1.1) would not take as strings; quoted on output.
_YAML11 = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?"
    r"|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?|0b[01_]+|=|<<)$"
)


def _resolve_plain(text):
    """Type of an unquoted scalar, as the 1.2 core schema reads it."""
    if _NULL.match(text):
        return None
    if _BOOL.match(text):
        return text.lower() == "true"
    if _INT.match(text):
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text)
    if _FLOAT.match(text):
        lowered = text.lower()
        if lowered.endswith("inf"):
            return float("-inf") if lowered.startswith("-") else float("inf")
        if lowered.endswith("nan"):
            return float("nan")
        return float(text)
    return text


_INDICATORS = set("!&*{}[],#|>@`\"'%")


def _needs_quotes(text, key=False):
    if text == "" or text != text.strip():
        return True
    if not isinstance(_resolve_plain(text), str):
        return True
    if _YAML11.match(text) and not key:
        return True
    if text[0] in _INDICATORS:
        return True
    if text[0] in "-?:" and (len(text) == 1 or text[1] == " "):
        return True
    if ": " in text or " #" in text or text.endswith(":"):
        return True
    if text in ("---", "...") or text.startswith(("--- ", "... ")):
        return True
    return any(ch in text for ch in "\t\n\r")


def _printable(text):
    return all(ch == " " or (ch.isprintable() and ch not in "\t") for ch in text)


def _scalar(value, key=False):
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    text = str(value)
    if not _needs_quotes(text, key):
        return text
    if _printable(text):
        return "'" + text.replace("'", "''") + "'"
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
        .replace("\r", "\\r")
    )
    return '"' + escaped + '"'


# --- writing -------------------------------------------------------------------


def _emit(value, indent, out):
    """Append the block lines of a non-empty mapping or sequence."""
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            head = f"{pad}{_scalar(key, key=True)}:"
            if isinstance(item, dict) and item:
                out.append(head)
                _emit(item, indent + 2, out)
            elif isinstance(item, list) and item:
                # ruamel's default: the dash sits at the key's indentation.
                out.append(head)
                _emit(item, indent, out)
            elif isinstance(item, dict):
                out.append(head + " {}")
            elif isinstance(item, list):
                out.append(head + " []")
            elif item is None:
                out.append(head)
            else:
                out.append(f"{head} {_scalar(item)}")
        return
    for item in value:
        if isinstance(item, (dict, list)) and item:
            nested = []
            _emit(item, indent + 2, nested)
            nested[0] = f"{pad}- {nested[0].lstrip()}"
            out.extend(nested)
        elif isinstance(item, dict):
            out.append(f"{pad}- {{}}")
        elif isinstance(item, list):
            out.append(f"{pad}- []")
        elif item is None:
            out.append(f"{pad}-")
        else:
            out.append(f"{pad}- {_scalar(item)}")


def dump(data):
    """The text ruamel would write for `data` (see the module doc)."""
    if data is None:
        return "null\n...\n"
    if isinstance(data, dict) and not data:
        return "{}\n"
    if isinstance(data, list) and not data:
        return "[]\n"
    if not isinstance(data, (dict, list)):
        return _scalar(data) + "\n...\n"
    lines = []
    _emit(data, 0, lines)
    return "\n".join(lines) + "\n"


# --- reading -------------------------------------------------------------------


def _strip_comment(text):
    """Drop a trailing comment that is outside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"" and (i == 0 or text[i - 1] in " \t[{,:-"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _unquote(text, line):
    if text[0] == "'":
        if len(text) < 2 or not text.endswith("'"):
            raise YamlError("unterminated single-quoted string", line)
        return text[1:-1].replace("''", "'")
    if len(text) < 2 or not text.endswith('"'):
        raise YamlError("unterminated double-quoted string", line)
    body, out, i = text[1:-1], [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", '"': '"'}
    simple.update({"\\": "\\", "/": "/", " ": " "})
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        code = body[i + 1 : i + 2]
        if code in simple:
            out.append(simple[code])
            i += 2
        elif code in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[code]
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        else:
            raise YamlError(f"unknown escape \\{code}", line)
    return "".join(out)


def _split_flow(text, line):
    """Split the inside of a flow collection at its top-level commas."""
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    if quote or depth:
        raise YamlError("unbalanced flow collection", line)
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _key_split(text):
    """Index of the `:` that ends a mapping key in `text`, or -1."""
    quote = None
    depth = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"" and i == 0:
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == ":" and depth == 0:
            if i + 1 == len(text) or text[i + 1] in " \t":
                return i
    return -1


def _inline(text, line):
    """A value written on one line: scalar or flow collection."""
    if text.startswith("["):
        if not text.endswith("]"):
            raise YamlError("unterminated flow sequence", line)
        return [_inline(p, line) for p in _split_flow(text[1:-1], line)]
    if text.startswith("{"):
        if not text.endswith("}"):
            raise YamlError("unterminated flow mapping", line)
        mapping = {}
        for part in _split_flow(text[1:-1], line):
            cut = _key_split(part)
            if cut < 0:
                mapping[_inline(part, line)] = None
            else:
                key = _inline(part[:cut].strip(), line)
                mapping[key] = _inline(part[cut + 1 :].strip(), line)
        return mapping
    if text.startswith(("'", '"')):
        return _unquote(text, line)
    if text[0] in "&*!|>%@`":
        raise YamlError(f"unsupported YAML construct {text!r}", line)
    return _resolve_plain(text)


class _Lines:
    """The meaningful lines of a document: (indent, text, line number)."""

    def __init__(self, text):
        self.items = []
        for number, raw in enumerate(text.splitlines(), start=1):
            if "\t" in raw[: len(raw) - len(raw.lstrip())]:
                raise YamlError("tabs are not allowed in indentation", number)
            content = _strip_comment(raw)
            if not content.strip():
                continue
            stripped = content.lstrip(" ")
            if stripped in ("---", "...") or stripped.startswith("--- "):
                if stripped.startswith("--- ") and stripped[4:].strip():
                    self.items.append((0, stripped[4:].strip(), number))
                if stripped == "..." and self.items:
                    break
                continue
            self.items.append((len(content) - len(stripped), stripped, number))


def _parse_node(lines, i):
    indent, text, number = lines.items[i]
    if text == "-" or text.startswith("- "):
        return _parse_seq(lines, i, indent)
    if _key_split(text) >= 0:
        return _parse_map(lines, i, indent)
    return _inline(text, number), i + 1


def _value_after(lines, i, indent, rest, number, in_seq_item):
    """The value of a key (or dash) whose inline part is `rest`."""
    if rest[:1] in ("|", ">"):
        raise YamlError("block scalars are not supported", number)
    if rest:
        return _inline(rest, number), i + 1
    if i + 1 < len(lines.items):
        nxt_indent, nxt_text, _ = lines.items[i + 1]
        if nxt_indent > indent:
            return _parse_node(lines, i + 1)
        dash = nxt_text == "-" or nxt_text.startswith("- ")
        if nxt_indent == indent and dash and not in_seq_item:
            # `key:` followed by `- item` at the same column (ruamel style).
            return _parse_seq(lines, i + 1, indent)
    return None, i + 1


def _parse_map(lines, i, indent):
    mapping = {}
    while i < len(lines.items):
        line_indent, text, number = lines.items[i]
        if line_indent < indent:
            break
        if line_indent > indent:
            raise YamlError("bad indentation of a mapping entry", number)
        if text == "-" or text.startswith("- "):
            break
        cut = _key_split(text)
        if cut < 0:
            raise YamlError("expected a 'key: value' entry", number)
        key = _inline(text[:cut].strip(), number)
        if key in mapping:
            raise YamlError(f"duplicate key {key!r}", number)
        rest = text[cut + 1 :].strip()
        mapping[key], i = _value_after(lines, i, indent, rest, number, False)
    return mapping, i


def _parse_seq(lines, i, indent):
    sequence = []
    while i < len(lines.items):
        line_indent, text, number = lines.items[i]
        if line_indent != indent or not (text == "-" or text.startswith("- ")):
            if line_indent > indent:
                raise YamlError("bad indentation of a sequence item", number)
            break
        rest = text[1:].lstrip(" ")
        if rest and (
            rest == "-" or rest.startswith("- ") or _key_split(rest) >= 0
        ):
            # `- key: value` or `- - item`: the rest is a nested node that
            # starts at the column after the dash.
            column = indent + len(text) - len(rest)
            lines.items[i] = (column, rest, number)
            value, i = _parse_node(lines, i)
        else:
            value, i = _value_after(lines, i, indent, rest, number, True)
        sequence.append(value)
    return sequence, i


def load(text):
    """The data in a config file's text (None for an empty document)."""
    lines = _Lines(text)
    if not lines.items:
        return None
    value, i = _parse_node(lines, 0)
    if i < len(lines.items):
        raise YamlError("unexpected content", lines.items[i][2])
    return value
