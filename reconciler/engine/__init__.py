"""L2: the engine composes adapters into operations (pull, create, start, apply...)."""
