"""Detach keys in Docker's syntax, and the matcher that spots them in a stream of keystrokes.

    "ctrl-p,ctrl-q"  the default: Ctrl-P then Ctrl-Q
    "ctrl-a"         one key
    "a,b"            plain characters

`ctrl-X` takes a letter or one of @ [ \\ ] ^ _ (the ASCII control codes 0..31).
"""

from __future__ import annotations

from reconciler.core.errors import InvalidArgument

DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"

_CTRL_SYMBOLS = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text: str) -> bytes:
    """The byte sequence for a --detach-keys value; b"" (empty text) disables detaching."""
    if text == "":
        return b""
    out = bytearray()
    for key in text.split(","):
        k = key.strip()
        if k.lower().startswith("ctrl-") and len(k) == 6:
            c = k[5]
            if c.isascii() and c.isalpha():
                out.append(ord(c.lower()) - ord("a") + 1)
                continue
            if c in _CTRL_SYMBOLS:
                out.append(_CTRL_SYMBOLS[c])
                continue
        elif len(k) == 1 and k.isascii() and k.isprintable():
            out.append(ord(k))
            continue
        raise InvalidArgument(
            f"invalid detach keys {text!r}: {key!r} is not a key",
            hint='use a comma-separated list of single characters or ctrl-<a-z, @, [, \\, ], ^, _>, '
                 'e.g. "ctrl-p,ctrl-q"')
    return bytes(out)


class DetachMatcher:
    """Feed it input chunks; it returns what to forward and whether the detach sequence was typed.

    Bytes that might begin the sequence are held back until the sequence completes (detach:
    they are swallowed) or breaks (they are forwarded, in order, as Docker does)."""

    def __init__(self, keys: bytes):
        self.keys = keys
        self._held = 0          # how many leading bytes of keys are matched and held back

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.keys:
            return data, False
        out = bytearray()
        for b in data:
            if b == self.keys[self._held]:
                self._held += 1
                if self._held == len(self.keys):
                    self._held = 0
                    return bytes(out), True
                continue
            if self._held:
                out += self.keys[:self._held]
                self._held = 0
                if b == self.keys[0]:
                    self._held = 1
                    continue
            out.append(b)
        return bytes(out), False

    def flush(self) -> bytes:
        """Held-back bytes, at end of input."""
        held, self._held = self.keys[:self._held], 0
        return held
