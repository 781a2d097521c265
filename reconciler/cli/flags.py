"""docker-mini's command-line parser: Docker's (pflag's) conventions behind a small decorator API.

Why not click or argparse: importing click costs ~30 ms and argparse ~10 ms (re, gettext), more
than runc takes to start a container. This module imports only os and sys; what only --help needs
is done when --help is asked for.

Conventions (Docker's):
  --name value, --name=value; boolean flags --rm and --rm=true|false; --x/--no-x negatable flags
  -e X, -eX, -e=X; clusters -it, -itd, -dp 80:80 (the last flag of a cluster may take a value)
  `--` ends the options; a command with interspersed=False stops at its first positional
  (`run IMAGE sh -c "ls -l"`: -c and -l are the container's); a group's options come before
  its subcommand. -h is --help unless the command uses -h itself.
Usage errors are UsageError with Docker's wording; the caller (cli.common.run_cli) prints them.
"""

from __future__ import annotations

import os
import sys

# --------------------------------------------------------------------------------------------
# exceptions


class Exit(Exception):
    """End the command with this exit code (ctx.exit)."""

    def __init__(self, exit_code: int = 0):
        super().__init__(exit_code)
        self.exit_code = exit_code


class Abort(Exception):
    """The user declined (confirm(abort=True)) or input ended at a prompt."""


class UsageError(Exception):
    exit_code = 2

    def __init__(self, message: str, ctx: Context | None = None):
        super().__init__(message)
        self.message = message
        self.ctx = ctx

    def show(self) -> None:
        path = self.ctx.command_path if self.ctx is not None else "docker-mini"
        echo(f"docker-mini: {self.message}\nSee '{path} --help'.", err=True)


# --------------------------------------------------------------------------------------------
# value types


class Choice:
    def __init__(self, choices):
        self.choices = list(choices)

    def convert(self, value: str):
        if value not in self.choices:
            raise ValueError("must be one of: " + ", ".join(self.choices))
        return value

    def describe(self) -> str:
        return "|".join(self.choices)


class FloatRange:
    def __init__(self, min: float | None = None, max: float | None = None):
        self.min, self.max = min, max

    def convert(self, value: str):
        number = _float(value)
        if self.min is not None and number < self.min:
            raise ValueError(f"must be at least {self.min}")
        if self.max is not None and number > self.max:
            raise ValueError(f"must be at most {self.max}")
        return number

    def describe(self) -> str:
        return "float"


class Path:
    """A path, checked when given: exists=True refuses a missing one; file_okay/dir_okay=False
    refuse a file/directory."""

    def __init__(self, exists: bool = False, file_okay: bool = True, dir_okay: bool = True):
        self.exists, self.file_okay, self.dir_okay = exists, file_okay, dir_okay

    def convert(self, value: str):
        if not os.path.exists(value):
            if self.exists:
                raise ValueError("no such file or directory")
            return value
        if not self.dir_okay and os.path.isdir(value):
            raise ValueError("is a directory")
        if not self.file_okay and not os.path.isdir(value):
            raise ValueError("is not a directory")
        return value

    def describe(self) -> str:
        return "path"


def _int(value: str) -> int:
    try:
        return int(value, 10)
    except ValueError:
        raise ValueError("expected an integer") from None


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError("expected a number") from None


UNPROCESSED = None          # click's name for "the words as given": a plain string here

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}


def _convert(kind, value: str):
    if kind is None or kind is str:
        return value
    if kind is int:
        return _int(value)
    if kind is float:
        return _float(value)
    return kind.convert(value)


def _type_word(kind) -> str:
    if kind is None or kind is str:
        return "string"
    if kind is int:
        return "int"
    if kind is float:
        return "float"
    return kind.describe()


# --------------------------------------------------------------------------------------------
# parameters


class Option:
    def __init__(self, decls, *, multiple=False, is_flag=False, default=None, type=None, metavar=None,
                 help=None, hidden=False, envvar=None, show_default=False, required=False, callback=None):
        self.longs: list[str] = []
        self.off_longs: list[str] = []       # --no-x of a --x/--no-x pair
        self.shorts: list[str] = []
        dest = None
        for decl in decls:
            if "/" in decl:
                on, off = decl.split("/", 1)
                self.longs.append(on[2:])
                self.off_longs.append(off[2:])
            elif decl.startswith("--"):
                self.longs.append(decl[2:])
            elif decl.startswith("-") and len(decl) == 2:
                self.shorts.append(decl[1])
            elif decl.isidentifier():
                dest = decl
            else:
                raise ValueError(f"bad option declaration {decl!r}")
        if not self.longs and not self.shorts:
            raise ValueError(f"option {decls!r} has no flag name")
        self.name = dest or (max(self.longs, key=len) if self.longs else self.shorts[0]).replace("-", "_")
        self.is_flag = is_flag or bool(self.off_longs)
        self.multiple = multiple
        if default is None:
            default = () if multiple else (False if self.is_flag else None)
        self.default = default
        self.type, self.metavar, self.help = type, metavar, help
        self.hidden, self.envvar, self.show_default = hidden, envvar, show_default
        self.required, self.callback = required, callback

    def display(self) -> str:
        return "--" + self.longs[0] if self.longs else "-" + self.shorts[0]


class Argument:
    def __init__(self, name: str, *, nargs: int = 1, required: bool | None = None, metavar=None, type=None):
        self.name = name
        self.nargs = nargs
        self.required = (nargs == 1) if required is None else required
        self.metavar = metavar or name.rstrip("_").upper()
        self.type = type

    def usage(self) -> str:
        if self.nargs == 1:
            return self.metavar if self.required or self.metavar.startswith("[") else f"[{self.metavar}]"
        base = self.metavar.rstrip(".")
        return f"{base} [{base}...]" if self.required else f"[{base}...]"


def _attach(f, param):
    if isinstance(f, Command):
        raise TypeError("put option/argument decorators below @command")
    f.__dict__.setdefault("__flags_params__", []).append(param)
    return f


def option(*decls, **kw):
    param = Option(decls, **kw)
    return lambda f: _attach(f, param)


def argument(name: str, **kw):
    param = Argument(name, **kw)
    return lambda f: _attach(f, param)


def version_option(version: str, prog_name: str):
    def show(ctx):
        echo(f"{prog_name}, version {version}")
        raise Exit(0)
    return option("--version", is_flag=True, help="Print version information and quit.", callback=show)


def pass_context(f):
    f.__flags_pass_context__ = True
    return f


# --------------------------------------------------------------------------------------------
# context


class Context:
    def __init__(self, command: Command, info_name: str, parent: Context | None = None):
        self.command = command
        self.info_name = info_name
        self.parent = parent
        self.params: dict = {}
        self.args: list[str] = []            # a group's: its subcommand and the words after it
        self.invoked_subcommand: str | None = None
        self._obj = None

    @property
    def obj(self):
        ctx = self
        while ctx is not None:
            if ctx._obj is not None:
                return ctx._obj
            ctx = ctx.parent
        return None

    @obj.setter
    def obj(self, value) -> None:
        self._obj = value

    def find_object(self, kind):
        ctx = self
        while ctx is not None:
            if isinstance(ctx._obj, kind):
                return ctx._obj
            ctx = ctx.parent
        return None

    def find_root(self) -> Context:
        ctx = self
        while ctx.parent is not None:
            ctx = ctx.parent
        return ctx

    @property
    def command_path(self) -> str:
        names = []
        ctx = self
        while ctx is not None:
            names.append(ctx.info_name)
            ctx = ctx.parent
        return " ".join(reversed(names))

    def exit(self, code: int = 0):
        raise Exit(code)


# --------------------------------------------------------------------------------------------
# commands


class Command:
    def __init__(self, name: str, callback, params, *, help: str | None = None, hidden: bool = False,
                 interspersed: bool = True, usage: str | None = None):
        self.name = name
        self.callback = callback
        self.params = list(params)
        self.options = [p for p in self.params if isinstance(p, Option)]
        self.arguments = [p for p in self.params if isinstance(p, Argument)]
        self.help = help or ""
        self.hidden = hidden
        self.interspersed = interspersed
        self.usage = usage
        self.pass_context = bool(getattr(callback, "__flags_pass_context__", False))
        self.long: dict[str, tuple[Option, bool]] = {}      # name -> (option, value of the bare flag)
        self.short: dict[str, Option] = {}
        for o in self.options:
            for n in o.longs:
                self._add(self.long, n, (o, True))
            for n in o.off_longs:
                self._add(self.long, n, (o, False))
            for c in o.shorts:
                self._add(self.short, c, o)
        self.help_h = "h" not in self.short       # -h is --help unless the command has its own -h

    def _add(self, table: dict, key: str, value) -> None:
        if key in table:
            raise ValueError(f"command {self.name}: flag {key!r} declared twice")
        table[key] = value

    # -- parsing

    def make_context(self, info_name: str, args: list[str], parent: Context | None = None) -> Context:
        ctx = Context(self, info_name, parent)
        self.parse_args(ctx, list(args))
        return ctx

    def parse_args(self, ctx: Context, args: list[str]) -> None:
        given: dict[str, object] = {}
        positionals: list[str] = []
        i = 0
        while i < len(args):
            word = args[i]
            i += 1
            if word == "--":
                positionals += args[i:]
                break
            if word.startswith("--"):
                i = self._long(ctx, word, args, i, given)
            elif word.startswith("-") and word != "-":
                i = self._shorts(ctx, word, args, i, given)
            else:
                positionals.append(word)
                if not self.interspersed:
                    positionals += args[i:]
                    break
        for o in self.options:
            if o.callback is not None:
                continue
            if o.name in given:
                value = given[o.name]
                ctx.params[o.name] = tuple(value) if o.multiple else value
                continue
            env = os.environ.get(o.envvar) if o.envvar else None
            if env:
                ctx.params[o.name] = self._value(ctx, o, env, "$" + o.envvar)
            elif o.required:
                raise UsageError(f'required flag(s) "{o.display().lstrip("-")}" not set', ctx)
            else:
                ctx.params[o.name] = o.default
        self.bind_arguments(ctx, positionals)

    def _long(self, ctx: Context, word: str, args: list[str], i: int, given: dict) -> int:
        name, eq, value = word[2:].partition("=")
        entry = self.long.get(name)
        if entry is None:
            if name == "help":
                self.show_help(ctx)
            raise UsageError(f"unknown flag: --{name}", ctx)
        opt, bare = entry
        if opt.is_flag:
            flag = bare if not eq else (self._bool(ctx, value, "--" + name) == bare)
            self._store(ctx, opt, flag, given)
        else:
            if not eq:
                if i >= len(args):
                    raise UsageError(f"flag needs an argument: --{name}", ctx)
                value = args[i]
                i += 1
            self._store(ctx, opt, self._value(ctx, opt, value, "--" + name), given)
        return i

    def _shorts(self, ctx: Context, word: str, args: list[str], i: int, given: dict) -> int:
        letters = word[1:]
        j = 0
        while j < len(letters):
            c = letters[j]
            opt = self.short.get(c)
            if opt is None:
                if c == "h" and self.help_h:
                    self.show_help(ctx)
                raise UsageError(f"unknown shorthand flag: '{c}' in {word}", ctx)
            rest = letters[j + 1:]
            if opt.is_flag:
                if rest.startswith("="):
                    self._store(ctx, opt, self._bool(ctx, rest[1:], "-" + c), given)
                    return i
                self._store(ctx, opt, True, given)
                j += 1
                continue
            if rest:
                value = rest[1:] if rest.startswith("=") else rest
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                raise UsageError(f"flag needs an argument: '{c}' in {word}", ctx)
            self._store(ctx, opt, self._value(ctx, opt, value, "-" + c), given)
            return i
        return i

    def _bool(self, ctx: Context, text: str, shown: str) -> bool:
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise UsageError(f'invalid argument "{text}" for "{shown}" flag: expected true or false', ctx)

    def _value(self, ctx: Context, opt: Option, text: str, shown: str):
        try:
            return _convert(opt.type, text)
        except ValueError as e:
            what = f'"{shown}"' if shown.startswith("$") else f'"{shown}" flag'
            raise UsageError(f'invalid argument "{text}" for {what}: {e}', ctx) from None

    def _store(self, ctx: Context, opt: Option, value, given: dict) -> None:
        if opt.callback is not None:      # --version: acts at once, is no parameter
            if value:
                opt.callback(ctx)
            return
        if opt.multiple:
            given.setdefault(opt.name, []).append(value)
        else:
            given[opt.name] = value       # a repeated single option: the last one wins

    def bind_arguments(self, ctx: Context, words: list[str]) -> None:
        required = sum(1 for a in self.arguments if a.required)
        unbounded = any(a.nargs == -1 for a in self.arguments)
        at_most = None if unbounded else len(self.arguments)
        if len(words) < required or (at_most is not None and len(words) > at_most):
            raise UsageError(self._count_message(ctx, required, at_most), ctx)
        rest = list(words)
        for n, a in enumerate(self.arguments):
            if a.nargs == -1:
                later = sum(1 for b in self.arguments[n + 1:] if b.required)
                take, rest = rest[:len(rest) - later], rest[len(rest) - later:]
                ctx.params[a.name] = tuple(self._arg_value(ctx, a, w) for w in take)
            elif rest:
                ctx.params[a.name] = self._arg_value(ctx, a, rest.pop(0))
            else:
                ctx.params[a.name] = None
        ctx.args = rest

    def _count_message(self, ctx: Context, required: int, at_most: int | None) -> str:
        path = f'"{ctx.command_path}"'

        def n(k):
            return f"{k} argument" + ("" if k == 1 else "s")
        if at_most == required:
            return f"{path} requires exactly {n(required)}." if required else f"{path} accepts no arguments."
        if at_most is None:
            return f"{path} requires at least {n(required)}."
        return f"{path} accepts at most {n(at_most)}."

    def _arg_value(self, ctx: Context, a: Argument, word: str):
        try:
            return _convert(a.type, word)
        except ValueError as e:
            raise UsageError(f'invalid argument "{word}" for "{a.metavar}": {e}', ctx) from None

    # -- running

    def invoke(self, ctx: Context):
        if self.callback is None:
            return None
        if self.pass_context:
            return self.callback(ctx, **ctx.params)
        return self.callback(**ctx.params)

    # -- help

    def usage_line(self, ctx: Context) -> str:
        words = " ".join(a.usage() for a in self.arguments)
        tail = self.usage if self.usage is not None else words
        return f"Usage:  {ctx.command_path} [OPTIONS]" + (f" {tail}" if tail else "")

    def help_text(self, ctx: Context) -> str:
        parts = [self.usage_line(ctx), ""]
        if self.help:
            parts += [_cleandoc(self.help), ""]
        table = self.options_table()
        if table:
            parts += ["Options:", table]
        return "\n".join(parts).rstrip("\n") + "\n"

    def options_table(self) -> str:
        rows = []
        for o in self.options:
            if o.hidden:
                continue
            names = ", ".join(["-" + c for c in o.shorts] + ["--" + n for n in o.longs])
            if o.off_longs:
                names += ", " + ", ".join("--" + n for n in o.off_longs)
            if not o.shorts:
                names = "    " + names
            if not o.is_flag:
                names += " " + (o.metavar or ("list" if o.multiple else _type_word(o.type)))
            text = o.help or ""
            if o.show_default and o.default not in (None, "", ()):
                d = o.default
                shown = ("true" if d else "false") if isinstance(d, bool) else (
                    f'"{d}"' if isinstance(d, str) else str(d))
                text = (text + " " if text else "") + f"(default {shown})"
            rows.append(("  " + names, text))
        if self.help_h:
            rows.append(("  -h, --help", "Print usage"))
        else:
            rows.append(("      --help", "Print usage"))
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"{left.ljust(width)}   {right}".rstrip() for left, right in rows)

    def show_help(self, ctx: Context):
        echo(self.help_text(ctx), nl=False)
        raise Exit(0)

    def short_help(self) -> str:
        first = _cleandoc(self.help).split("\n\n", 1)[0].replace("\n", " ")
        stop = first.find(". ")
        return first[:stop + 1] if stop >= 0 else first


class Group(Command):
    """Options, then a subcommand (looked up in `lazy`, name -> (module, attribute), imported
    only when invoked, or registered with @group.command())."""

    def __init__(self, name: str, callback, params, *, lazy: dict | None = None, **kw):
        super().__init__(name, callback, params, interspersed=False, **kw)
        self.lazy = lazy or {}
        self.commands: dict[str, Command] = {}

    def command(self, name: str | None = None, **kw):
        return self._register(command(name, **kw))

    def group(self, name: str | None = None, **kw):
        return self._register(group(name, **kw))

    def _register(self, decorator):
        def register(f):
            cmd = decorator(f)
            self.commands[cmd.name] = cmd
            return cmd
        return register

    def get_command(self, name: str) -> Command | None:
        if name in self.commands:
            return self.commands[name]
        if name not in self.lazy:
            return None
        module, attr = self.lazy[name]
        try:
            __import__(module)
        except ModuleNotFoundError as e:
            if e.name == module:
                return None
            raise
        return getattr(sys.modules[module], attr)

    def list_commands(self) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def bind_arguments(self, ctx: Context, words: list[str]) -> None:
        ctx.args = list(words)
        ctx.invoked_subcommand = words[0] if words else None

    def invoke(self, ctx: Context):
        if not ctx.args:
            self.show_help(ctx)
        name, rest = ctx.args[0], ctx.args[1:]
        cmd = self.get_command(name)
        if cmd is None:
            raise UsageError(f"'{name}' is not a {ctx.command_path} command.", ctx)
        super().invoke(ctx)
        sub = Context(cmd, name, ctx)
        cmd.parse_args(sub, rest)
        return cmd.invoke(sub)

    def usage_line(self, ctx: Context) -> str:
        return f"Usage:  {ctx.command_path} [OPTIONS] COMMAND"

    def help_text(self, ctx: Context) -> str:
        text = super().help_text(ctx)
        rows = []
        for name in self.list_commands():
            cmd = self.get_command(name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.short_help()))
        if rows:
            width = max(len(n) for n, _ in rows)
            text += "\nCommands:\n" + "".join(f"  {n.ljust(width)}   {h}".rstrip() + "\n" for n, h in rows)
        text += f"\nRun '{ctx.command_path} COMMAND --help' for more information on a command.\n"
        return text


def _make(cls, name, f, kw):
    params = list(reversed(f.__dict__.get("__flags_params__", [])))
    doc = kw.pop("help", None) or f.__doc__
    cmd = cls(name or f.__name__.rstrip("_").replace("_", "-"), f, params, help=doc, **kw)
    cmd.__doc__ = f.__doc__
    return cmd


def command(name: str | None = None, **kw):
    """@command(name, interspersed=True, hidden=False, usage=None)."""
    return lambda f: _make(Command, name, f, dict(kw))


def group(name: str | None = None, **kw):
    """@group(name, lazy={name: (module, attribute)})."""
    return lambda f: _make(Group, name, f, dict(kw))


# --------------------------------------------------------------------------------------------
# terminal I/O


def echo(message="", err: bool = False, nl: bool = True) -> None:
    stream = sys.stderr if err else sys.stdout
    text = message if isinstance(message, str) else str(message)
    stream.write(text + "\n" if nl else text)
    stream.flush()


def prompt(text: str, hide_input: bool = False) -> str:
    while True:
        try:
            if hide_input:
                import getpass
                value = getpass.getpass(f"{text}: ")
            else:
                echo(f"{text}: ", err=False, nl=False)
                line = sys.stdin.readline()
                if not line:
                    raise EOFError
                value = line.rstrip("\r\n")
        except (EOFError, KeyboardInterrupt):
            echo()
            raise Abort() from None
        if value:
            return value


def confirm(text: str, abort: bool = False, default: bool = False) -> bool:
    echo(f"{text} [{'Y/n' if default else 'y/N'}]: ", nl=False)
    line = sys.stdin.readline()
    if not line:
        echo()
        raise Abort()
    answer = line.strip().lower()
    ok = default if not answer else answer in ("y", "yes")
    if abort and not ok:
        raise Abort()
    return ok


def _cleandoc(text: str) -> str:
    lines = text.expandtabs().strip("\n").split("\n")
    indents = [len(ln) - len(ln.lstrip()) for ln in lines[1:] if ln.strip()]
    cut = min(indents) if indents else 0
    return "\n".join([lines[0].strip()] + [ln[cut:].rstrip() for ln in lines[1:]]).strip()
