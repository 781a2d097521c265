"""Plain value classes for the modules on `run`'s path, without the dataclasses module.

`import dataclasses` costs ~11 ms here (it loads inspect, ast, dis, tokenize) and every
@dataclass execs generated code at import. A Record subclass names its attributes in __slots__
(in constructor order) and sets them in an explicit __init__; Record derives equality, repr,
replace() and as_dict() from __slots__, like a dataclass would. FrozenRecord is the
frozen=True flavour: hashable, and attributes cannot be assigned after __init__.
"""

from __future__ import annotations


class Record:
    __slots__ = ()
    __hash__ = None     # mutable: unhashable, as a dataclass with eq and without frozen

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({inner})"

    def __reduce__(self):       # copy, deepcopy and pickle rebuild through __init__
        return self.__class__, self._values()

    def as_dict(self) -> dict:
        """Attribute name -> value (shallow: nested values are not copied)."""
        return {name: getattr(self, name) for name in self.__slots__}

    def replace(self, **changes):
        """A copy with some attributes changed (dataclasses.replace)."""
        unknown = set(changes) - set(self.__slots__)
        if unknown:
            raise TypeError(f"{type(self).__qualname__} has no attribute {sorted(unknown)[0]!r}")
        return self.__class__(**{**self.as_dict(), **changes})


class FrozenRecord(Record):
    __slots__ = ()

    def _set(self, *values) -> None:
        """Called once by __init__ with every attribute's value, in __slots__ order."""
        for name, value in zip(self.__slots__, values, strict=True):
            object.__setattr__(self, name, value)

    def __hash__(self) -> int:
        return hash(self._values())

    def __setattr__(self, name, value):
        raise AttributeError(f"cannot assign to attribute {name!r} of a frozen {type(self).__qualname__}")

    def __delattr__(self, name):
        raise AttributeError(f"cannot delete attribute {name!r} of a frozen {type(self).__qualname__}")
