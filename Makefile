# textarmor: `make demo` runs the main job, `make test` the test suite; both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EXTRAS ?= minilm,attacks,explain,onnx,serve,azureml,ray,dev

.PHONY: setup demo test lint clean wordnet textattack-venv bench-attacks

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c requirements/constraints.txt "torch==2.13.0"
	$(BIN)/pip install -q -c requirements/constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: $(STAMP) wordnet
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

# WordNet 3.0 (+ the sense index NLTK reads) for the word-substitution attacks (pwws, textfooler).
# Installed only when missing and when running as root; otherwise the tests that need it skip and say why.
wordnet:
	@if [ ! -f /usr/share/wordnet/index.sense ] && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q wordnet-base wordnet-sense-index >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q wordnet-base wordnet-sense-index >/dev/null; }; fi

# TextAttack, the independent reference for benchmarks/attacks, in its own venv: it pins transformers 4.x.
# Offline, `import textattack` needs an NLTK stopwords file; scikit-learn's list is written there.
TA_VENV := .venv-textattack
$(TA_VENV)/.installed:
	test -x $(TA_VENV)/bin/python || $(PYTHON) -m venv $(TA_VENV)
	$(TA_VENV)/bin/pip install -q -c requirements/constraints.txt "torch==2.13.0"
	$(TA_VENV)/bin/pip install -q -c requirements/constraints.txt textattack "huggingface-hub<1.0"
	$(TA_VENV)/bin/python benchmarks/attacks/nltk_stopwords.py $(TA_VENV)/nltk_data
	touch $@

textattack-venv: $(TA_VENV)/.installed wordnet

bench-attacks: $(STAMP) textattack-venv
	nice -n 10 bash benchmarks/attacks/run.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
