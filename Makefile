# The README's commands. `make run` and `make test` do all setup on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: setup run run-mri test bench bench-mri dev clean

$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0          # the CPU wheel; an unpinned torch pulls a CUDA build
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

setup: $(BIN)/.installed $(DAGSTER_HOME)/dagster.yaml

run: setup
	$(BIN)/synth-pipeline release --data flchain --out releases   # the default generator, auto (README: Choosing a generator)

# The brain-MRI arm: its own target and its own small default budget (a few minutes on CPU).
run-mri: setup mri-data
	$(BIN)/synth-pipeline mri-release --data default --model diffusion --out releases

test: setup services mri-data
	$(BIN)/pytest -m "not benchmark" -n 2 --dist loadfile  # two workers, a test file each: the suite is mostly waiting on subprocesses and single-threaded steps

# What the tests need besides Python, from Debian's packages, on loopback only: headless Chromium
# (report and UI checks) and a throw-away PostgreSQL server on 127.0.0.1:55432 (Dagster storage test).
.PHONY: browsers services
browsers:
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium)

services: browsers
	scripts/postgres.sh

# Colin27 ("ch2"), an independent real head scan shipped by Debian's mricron-data: the MRI arm's external check.
.PHONY: mri-data
mri-data:
	test -f /usr/share/mricron/templates/ch2.nii.gz || (apt-get update -qq && apt-get install -y -qq mricron-data)

# Speed and quality benchmarks against their peers (slow; results go to benchmarks/*.md, not asserted)
bench: setup
	$(BIN)/python benchmarks/dcr.py --rows 100000 --dims 64
	$(BIN)/python benchmarks/evaluation.py
	$(BIN)/python benchmarks/agreement.py

bench-mri: setup mri-data
	$(BIN)/python benchmarks/mri.py

dev: setup
	$(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf .work .dagster_home releases
