# AegisFlow developer entry points. Everything installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONFIG ?= conf/aegisflow.yaml

.PHONY: install run test lint redis-server postgresql promtool chromium openssl wrk bench soak bench-check bench-baseline train-injection clean

install: $(STAMP)

$(STAMP): setup.py pyproject.toml
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

# promtool checks the shipped alert rules (conf/prometheus-alerts.yml); Debian's
# prometheus package brings it (its service is not started here)
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  echo 'installing promtool (prometheus)'; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus; }

# the admin console's browser tests drive Debian's chromium through Playwright
# (tests/support/browser.py); Playwright's own browser download is not needed
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo 'installing chromium'; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium fonts-dejavu-core; }

# the upstream client's TLS test makes a throwaway certificate with openssl; a
# serving test reads the listening socket's backlog with ss (iproute2)
openssl:
	@command -v openssl >/dev/null 2>&1 && command -v ss >/dev/null 2>&1 || { \
	  echo 'installing openssl and iproute2'; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    openssl iproute2; }

lint: install
	$(VENV)/bin/ruff check .

# The suite runs under the default worker class; then the modules that exercise
# serving itself (streams, slow senders, hostile requests, faults, limits, reloads)
# run once more with every gateway on the other class (tests/support/gateway.py).
SERVING_TESTS := $(addprefix tests/integration/,test_serving.py test_slow_senders.py \
  test_hostile_requests.py test_faults_under_load.py test_limits_shm.py \
  test_gateway_core.py test_messages_passthrough.py test_responses_api.py \
  test_response_cache.py test_guardrails.py test_tls_upstream.py)
OTHER_WORKER_CLASS := gthread

test: install redis-server postgresql promtool chromium openssl lint
	$(PY) -m pytest -q -p no:cacheprovider tests
	AEGISFLOW_TEST_WORKER_CLASS=$(OTHER_WORKER_CLASS) $(PY) -m pytest -q -p no:cacheprovider $(SERVING_TESTS)

wrk:
	@command -v wrk >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx; }

# Load benchmarks (dated tables appended to bench/RESULTS.md) and the hot-path suites:
# the gateway against bare Falcon and a pass-through proxy (mock and static upstream,
# JSON and SSE, 1 and 64 connections) under each worker class in the same rounds,
# then 1,000 slow streams at once on the default class, then cache hits against
# the in-process mock and the hit ratio of 4 workers, then 10,000 run-time keys
# against 10, then short requests beside 1,000 held by an upstream that never
# answers.
bench: install wrk redis-server chromium
	$(PY) bench/run.py --rounds 3 --duration 10 --worker-classes gevent,gthread,meinheld --append bench/RESULTS.md
	$(PY) bench/streams.py --streams 1000 --worker-class gevent --append bench/RESULTS.md
	$(PY) bench/cache.py --rounds 3 --duration 10 --append bench/RESULTS.md
	$(PY) bench/keys.py --rounds 3 --duration 10 --append bench/RESULTS.md
	$(PY) bench/console.py --rounds 7 --append bench/RESULTS.md
	$(PY) bench/hung.py --rounds 4 --duration 8 --held 1000 --append bench/RESULTS.md
	$(PY) -m pytest -q -p no:cacheprovider bench --benchmark-only

# Steady load for at least 20 minutes and 1,000,000 requests: RSS and open file
# descriptors after 100,000 requests and at the end (appended to bench/RESULTS.md).
soak: install wrk
	$(PY) bench/memory.py --requests 1000000 --minutes 20 --append bench/RESULTS.md

# Hot-path regression check: the pytest-benchmark suites against the saved baseline
# (bench/baseline/); a suite whose fastest round takes twice the baseline's
# fails. The minimum, not the median: this machine's speed varies from one minute to
# the next, and the fastest round is what a code change moves.
BENCH_SUITES = bench/test_shm_hotpath.py bench/test_limits_admission.py bench/test_ledger_flush.py bench/test_policy_speed.py bench/test_cache_lookup.py
BENCH_STORAGE = --benchmark-storage=file://bench/baseline
# sub-microsecond pieces swing by more than 2x with the machine; their sum,
# test_bench_request_shm_writes, is checked
BENCH_SELECT = -k 'not counter_increment and not ring_push and not stripe_lock_round_trip'

bench-check: install redis-server
	$(PY) -m pytest -q -p no:cacheprovider $(BENCH_SUITES) --benchmark-only $(BENCH_STORAGE) $(BENCH_SELECT) --benchmark-compare --benchmark-compare-fail=min:100% --benchmark-columns=min,median,rounds

# Save a new baseline (after a change that is meant to move the figures).
bench-baseline: install redis-server
	$(PY) -m pytest -q -p no:cacheprovider $(BENCH_SUITES) --benchmark-only $(BENCH_STORAGE) --benchmark-save=baseline --benchmark-columns=min,median,rounds

# Retrain the injection detector's learned model on the development split and your
# own labelled sets (JSONL: {"label": "attack" | "benign", "text": ...} per line),
# writing aegisflow/policy/injection_model.json; then evaluate.py measures it.
DATA ?=
train-injection: install
	$(PY) bench/policy_eval/train_injection.py $(DATA)
	$(PY) bench/policy_eval/evaluate.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
