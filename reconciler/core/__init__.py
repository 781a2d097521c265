"""L0: pure code. No I/O, no subprocesses, no network: data in, data out."""
