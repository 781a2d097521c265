"""The labels docker-mini puts on the containers of a stack. A module of its own, so that `ps`
and networking can name them without loading the spec parser (yaml, dataclasses)."""

STACK = "io.docker-mini.stack"
SERVICE = "io.docker-mini.service"
SPEC_HASH = "io.docker-mini.spec-hash"
IMAGE_DIGEST = "io.docker-mini.image-digest"
SPEC = "io.docker-mini.spec"          # the canonical hashed fields, to say what changed
RESERVED_PREFIX = "io.docker-mini."
