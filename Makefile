# AegisFlow developer entry points. Everything installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= conf/aegisflow.yaml

.PHONY: install run test lint redis-server postgresql wrk bench clean

install: $(STAMP)

$(STAMP): setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# meinheld pins greenlet<0.5, which does not build on 3.11: install it alone.
	$(PY) -m pip install --quiet --no-deps 'meinheld==1.0.2'
	touch $(STAMP)

run: install
	$(VENV)/bin/aegisflow serve --config $(CONFIG)

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo 'installing redis-server'; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

# the tests start their own PostgreSQL (a throwaway cluster on a free port) from
# Debian's server binaries; the package's own cluster is not used
postgresql:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  echo 'installing postgresql'; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

lint: install
	$(VENV)/bin/ruff check .

test: install redis-server postgresql lint
	$(PY) -m pytest -q -p no:cacheprovider tests

wrk:
	@command -v wrk >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx; }

# Load benchmarks (dated tables appended to bench/RESULTS.md) and the hot-path suites.
bench: install wrk redis-server
	$(PY) bench/load.py --rounds 3 --duration 10 --extra-config limits=bench/gateway-limits.yaml --append bench/RESULTS.md
	$(PY) bench/upstream.py --rounds 3 --duration 10 --append bench/RESULTS.md
	$(PY) -m pytest -q -p no:cacheprovider bench --benchmark-only

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
