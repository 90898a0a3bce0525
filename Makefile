# The README's commands. Each target creates .venv and installs the project when needed.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
NMT := $(VENV)/bin/nmt-keras
DEMO_RUN ?= runs/demo
DATA := data/tatoeba-spa-eng
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test test-all lint format bench

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	rm -rf $(DEMO_RUN)
	$(NMT) train --config training/configs/demo.yaml --run-dir $(DEMO_RUN)
	$(NMT) evaluate --run $(DEMO_RUN) --src $(DATA)/test.es.gz --ref $(DATA)/test.en.gz \
		--output $(DEMO_RUN)/test.hyp.en
	printf '%s\n' "Tengo hambre." "¿Dónde está la estación de tren?" \
		"Mi hermano lee un libro en el jardín." | $(NMT) translate --run $(DEMO_RUN)
	$(NMT) plot-attention --run $(DEMO_RUN) "Mi hermano lee un libro en el jardín." \
		--output $(DEMO_RUN)/attention.png

test: $(VENV)/.installed
	$(PYTHON) -m pytest -m "not slow"

test-all: $(VENV)/.installed
	$(PYTHON) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .

bench: $(VENV)/.installed
	$(PYTHON) benchmarks/padding.py
	$(PYTHON) benchmarks/train_throughput.py
