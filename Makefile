# fraud-ml: the two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
ARGS ?=
CONF ?= conf/local.yaml
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))

.PHONY: help venv install jars browser kafka-start kafka-stop kafka-status prepare synthesize train retrain lint \
        stream alerts serve produce drift dashboard estimate-fpr demo test test-fast bench bench-capacity bench-latency bench-fuzz bench-alerts bench-serve soak cluster test-cluster compose-build compose-up \
        compose-down compose-config compose-test \
        clean distclean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip wheel setuptools
	$(PIP) install -q -e ".[models,gan,dashboard,notebooks,test]"
	touch $@

venv install: $(VENV)/.installed  ## create the virtualenv and install the package with all extras

var/jars/.resolved: spark/pom.xml spark/udf/pom.xml $(shell find spark/udf/src -name '*.java') | $(VENV)/.installed
	$(PY) -m fraud_ml.local.jars resolve
	touch $@

jars: var/jars/.resolved  ## resolve Kafka, Spark-Kafka and Delta jars with Maven, build spark/udf (offline afterwards)

browser:  ## headless Chromium for the dashboard browser test (Debian package; no-op when present)
	bash scripts/install_browser.sh

kafka-start: jars  ## start the local KRaft broker and wait until it is ready
	$(PY) jobs/kafka_local.py start --conf $(CONF) $(ARGS)

kafka-stop:  ## stop the local broker
	$(PY) jobs/kafka_local.py stop --conf $(CONF)

kafka-status:
	$(PY) jobs/kafka_local.py status --conf $(CONF)

prepare: jars  ## split the data (synthetic, or ARGS="--input creditcard.csv") into Delta tables
	$(PY) jobs/prepare_data.py --conf $(CONF) $(ARGS)

synthesize: jars  ## synthetic frauds + quality report (ARGS="--method smote|wgan|cwgan")
	$(PY) jobs/synthesize.py --conf $(CONF) $(ARGS)

train: jars  ## train and register the XGBoost champion
	$(PY) jobs/train.py --conf $(CONF) $(ARGS)

retrain: jars  ## train a challenger; move @champion only if it beats the champion by the margin
	$(PY) jobs/retrain.py --conf $(CONF) $(ARGS)

stream: jars  ## run the streaming scorer (Ctrl-C to stop)
	$(PY) jobs/stream_score.py --conf $(CONF) $(ARGS)

alerts: jars  ## run the real-time alerts job beside the stream (Ctrl-C to stop)
	$(PY) jobs/alerts.py --conf $(CONF) $(ARGS)

produce: $(VENV)/.installed  ## replay the test split into Kafka (ARGS="--rate 1000")
	$(PY) jobs/produce.py --conf $(CONF) $(ARGS)

estimate-fpr: $(VENV)/.installed  ## out-of-fold FPR / recall of the champion recipe (ARGS="--input creditcard.csv")
	$(PY) jobs/estimate_fpr.py --conf $(CONF) $(ARGS)

drift: $(VENV)/.installed  ## PSI drift of scores and top features into the drift Delta table
	$(PY) jobs/drift.py --conf $(CONF) $(ARGS)

serve: $(VENV)/.installed  ## REST scoring of the champion (MLflow's scoring server, 127.0.0.1:5001)
	$(PY) jobs/serve.py --conf $(CONF) $(ARGS)

dashboard: $(VENV)/.installed  ## open the Streamlit dashboard
	$(PY) jobs/dashboard.py --conf $(CONF) $(ARGS)

demo: jars  ## the whole demo (ARGS="--transactions 20000 --no-dashboard" for headless)
	$(PY) jobs/demo.py --conf $(CONF) $(ARGS)

test: lint jars browser  ## lint, then the whole test suite (real broker, Spark, Delta, MLflow, Chromium)
	$(PY) -m pytest $(ARGS)

lint: $(VENV)/.installed  ## ruff: lint and format check (pyproject.toml [tool.ruff])
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test-fast: $(VENV)/.installed  ## unit tests only (no broker)
	$(PY) -m pytest -m "not integration and not slow" $(ARGS)

bench: bench-capacity bench-latency  ## the streaming benchmark (capacity, then 1,000 and 10,000 tx/s)

bench-capacity: jars  ## backlog of 1,000,000 transactions, as fast as possible
	$(PY) jobs/bench.py --mode capacity $(ARGS)

bench-latency: jars  ## offered load 1,000 tx/s, then 10,000 tx/s
	$(PY) jobs/bench.py --mode latency --offered-tps 1000 $(ARGS)
	$(PY) jobs/bench.py --mode latency --offered-tps 10000 $(ARGS)

bench-fuzz: jars  ## 100,000 fuzzed messages mixed with good ones through the real broker and stream
	$(PY) jobs/bench.py --mode fuzz $(ARGS)

soak: jars browser  ## 60 min at 1,000 tx/s: stream + dashboard (headless Chromium) + drift, per-10-min table
	$(PY) jobs/soak.py $(ARGS)

bench-serve: $(VENV)/.installed  ## REST scoring: one-row p50/p99 and batched rows/s beside in-process references
	$(PY) jobs/bench_serve.py $(ARGS)

bench-alerts: jars  ## real-time alerts latency at 1,000 then 10,000 tx/s, the Delta stream running too
	$(PY) jobs/bench_alerts.py --offered-tps 1000 $(ARGS)
	$(PY) jobs/bench_alerts.py --offered-tps 10000 $(ARGS)

cluster:  ## a local standalone Spark master + worker (Ctrl-C stops them)
	$(PY) -m fraud_ml.local.cluster

test-cluster: jars  ## the job against a real local standalone cluster
	$(PY) -m pytest tests/local/test_cluster.py $(ARGS)

compose-build:  ## build the images of the full stack (needs a Docker engine)
	docker compose build

compose-up:  ## start the full stack: Kafka, Spark, MLflow + PostgreSQL + MinIO, stream, dashboard
	docker compose up -d

compose-down:
	docker compose down

compose-config:  ## validate docker-compose.yml statically (docker compose config, where the client runs)
	docker compose -f docker-compose.yml --env-file .env.example config -q

compose-test: $(VENV)/.installed  ## build the stack (stand-in images without a registry), run it, check it, down -v (~1 h first time)
	bash scripts/install_docker.sh
	$(PY) jobs/compose_test.py $(ARGS)

clean:  ## remove local data, tables, checkpoints and MLflow store (keeps venv and jars)
	-$(PY) jobs/kafka_local.py stop --conf $(CONF) 2>/dev/null
	rm -rf var/delta var/checkpoints var/kafka var/mlflow var/reports

distclean: clean
	rm -rf $(VENV) var spark/target
