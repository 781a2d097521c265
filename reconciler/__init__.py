"""docker-mini: a daemonless, declarative container engine."""

__version__ = "0.1.0"
