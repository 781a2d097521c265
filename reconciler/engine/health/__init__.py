"""Healthchecks without a daemon: run a container's probe inside it (an exec session), keep its
health in health.json beside the record (atomically; one file per container, reset by each new
run of it), and wait on a container's health. Who probes: `watch` (every container with a
healthcheck, when due), `apply` (the dependencies it waits on), `docker-mini healthcheck NAME`.
The rules (what to run, when, what a result does) are core.health's.

state   the container's healthcheck (image x spec) and its health.json: read by ps and inspect
probe   running probes (an exec session each), watch's schedule and apply's wait
"""
