# The README's commands. Each target creates .venv and installs the project when needed.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
NMT := $(VENV)/bin/nmt-keras
DEMO_RUN ?= runs/demo
DEMO_MODELS ?= saved_models/demo
DEMO_SENTENCES := "Tengo hambre." "¿Dónde está la estación de tren?" \
	"Mi hermano lee un libro en el jardín."
DATA := data/tatoeba-spa-eng
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test test-all lint format bench serving-compat

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

# Train on the bundled corpus, evaluate, export, serve over gRPC, translate through the
# client and plot the served attention; the server is stopped however the recipe ends.
demo: $(VENV)/.installed
	rm -rf $(DEMO_RUN) $(DEMO_MODELS)
	$(NMT) train --config training/configs/demo.yaml --run-dir $(DEMO_RUN)
	$(NMT) evaluate --run $(DEMO_RUN) --src $(DATA)/test.es.gz --ref $(DATA)/test.en.gz \
		--output $(DEMO_RUN)/test.hyp.en
	$(NMT) export --run $(DEMO_RUN) --model_base_path $(DEMO_MODELS) --version 1
	$(NMT) serve --port 8500 --rest_api_port 8501 --model_name demo \
		--model_base_path $(DEMO_MODELS) & server=$$!; \
	trap 'kill $$server; wait $$server' EXIT; \
	printf '%s\n' $(DEMO_SENTENCES) | $(NMT) client --target 127.0.0.1:8500 \
		--model_name demo --wait 120 --align $(DEMO_RUN)/attention.png

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

# Exports run on the newest released TF Serving's TensorFlow (a throw-away virtualenv).
serving-compat: $(VENV)/.installed
	$(PYTHON) benchmarks/serving_compat.py --json benchmarks/results/serving_compat.json
