"""The one place logging is configured (the CLI calls it once per command).

Every module logs with the standard library (`logging.getLogger(__name__)`); `watch` also
logs through structlog. Both end up in one handler on stderr at the level of `--log-level`:
- configure(): any command; plain lines, and structlog is not imported (`ps` does not pay for it);
- configure_structlog(): `watch`; structlog's events and the standard library's records
  rendered alike by structlog's ProcessorFormatter: JSON lines, or coloured lines on a terminal.
"""

from __future__ import annotations

import logging
import sys

LEVELS = ("debug", "info", "warning", "error")


def _install(handler: logging.Handler, level: str) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "docker_mini", False)]:
        root.removeHandler(old)
    handler.docker_mini = True
    root.addHandler(handler)
    root.setLevel(_level(level))


def _level(name: str) -> int:
    if name not in LEVELS:
        raise ValueError(f"unknown log level {name!r}: one of {', '.join(LEVELS)}")
    return logging.getLevelNamesMapping()[name.upper()]


def configure(level: str = "warning") -> None:
    """Standard library records at `level` and above to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("docker-mini: %(levelname)s: %(name)s: %(message)s"))
    _install(handler, level)


def configure_structlog(level: str = "warning", json_output: bool | None = None) -> None:
    """structlog's events and the standard library's records to stderr, rendered by structlog."""
    import structlog

    if json_output is None:
        json_output = not sys.stderr.isatty()
    renderer = (structlog.processors.JSONRenderer() if json_output
                else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    shared = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    _install(handler, level)
