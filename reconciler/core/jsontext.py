"""JSON text to and from Python values through the json package's C accelerator (_json).

Every command reads and writes JSON (records, configs, runc's config.json); the json package
costs ~7 ms to import because it imports re (and with it enum, functools and collections) for
its pure-Python fallbacks, which the accelerator never needs. The output is what json.dumps
gives with compact separators; malformed input is reported by the json package itself, so
errors carry its message, line and column (json.JSONDecodeError is a ValueError).
"""

from __future__ import annotations

try:
    import _json
except ImportError:         # an interpreter built without the accelerator
    _json = None

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"


def _unserializable(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


class _Options:
    """What _json's scanner reads off the json.JSONDecoder it normally gets."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float      # -Infinity, Infinity, NaN: what float() makes of them


_scan = _json.make_scanner(_Options()) if _json else None


def loads(text: str | bytes) -> Any:
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    if _scan is not None:
        try:
            value, end = _scan(text, start)
        except (StopIteration, SystemError):
            # SystemError: the accelerator words its errors with json.decoder's exception and
            # fails that way when json.decoder is not loaded yet
            pass
        else:
            if not text[end:].strip(_WHITESPACE):
                return value
    import json             # malformed (or no accelerator): json says what and where
    return json.loads(text)


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    if _json is None:
        import json
        return json.dumps(obj, sort_keys=sort_keys, separators=(",", ":"))
    # a fresh encoder each time, as json.dumps makes: its first argument is the set of
    # containers being encoded (circular references), which an exception would leave filled
    encode = _json.make_encoder({}, _unserializable, _json.encode_basestring_ascii, None,
                                ":", ",", sort_keys, False, True)
    return "".join(encode(obj, 0))
