# docker-mini: set-up, tests, demo and benchmarks. Everything installs what it needs itself.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# What the engine and its tests run against: real runtime, monitor, registry and image tools.
APT_PKGS := runc conmon nftables libarchive13 docker-registry skopeo umoci busybox-static \
            e2fsprogs iproute2 util-linux apache2-utils python3-venv strace
# Peers the benchmarks compare against.
BENCH_PKGS := podman docker.io docker-compose

.PHONY: deps deps-apt deps-bench venv unit test lint demo bench clean

deps: deps-apt venv

# apt-get install those of the packages $(1) that are not installed yet
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps-apt:
	$(call apt_install,$(APT_PKGS))

deps-bench:
	$(call apt_install,$(BENCH_PKGS))

# Bytecode is compiled here, as pip and Debian do at install time: the install is editable,
# so Python would compile on first import, but with PYTHONDONTWRITEBYTECODE set (as
# this environment does) it never writes the result and every command recompiles what it imports
# (measured here: ~20 ms of CPU on `ps`, ~70 ms on `run`). compileall only recompiles sources
# newer than their bytecode.
venv: $(VENV)/.installed
	$(PY) -m compileall -q reconciler >/dev/null

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

lint: venv
	$(VENV)/bin/lint-imports

# no root, no network, no system packages: what a contributor runs on a laptop after `make venv`
unit: venv
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit $(PYTEST_ARGS)

# everything, as root: the unit tests, then the system tests against real runc, conmon and a registry
test: deps
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit tests/system $(PYTEST_ARGS)

demo: deps
	$(PY) examples/demo.py

# all of pull, run, network, stack, compose (~15 min); BENCH_ARGS='network compose' runs only those
bench: deps deps-bench
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
