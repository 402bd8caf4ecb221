# The two commands: `make demo` (train -> export -> translate on a generated toy
# corpus) and `make test`. Both create .venv and install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO := runs/demo

.PHONY: demo test lint format clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	@set -e; start=$$(date +%s); rm -rf $(DEMO); \
	echo "== 1/5 toy corpus (data/toy)"; \
	$(PY) data_scripts/make_toy_corpus.py --out_dir=data/toy; \
	echo "== 2/5 SentencePiece"; \
	$(PY) data_scripts/train_sentencepiece.py --inputs=data/toy/train.src,data/toy/train.tgt \
	  --model_prefix=data/toy/spm --vocab_size=500 --model_type=bpe; \
	echo "== 3/5 train"; \
	$(PY) -m seq2seq_tf.train --config=configs/quickstart.py --workdir=$(DEMO)/work; \
	echo "== 4/5 export"; \
	$(PY) -m seq2seq_tf.export --workdir=$(DEMO)/work --export_dir=$(DEMO)/export; \
	echo "== 5/5 translate data/toy/test.src with the SavedModel"; \
	$(PY) -m seq2seq_tf.translate --model_dir=$(DEMO)/export --input=data/toy/test.src \
	  --output=$(DEMO)/test.hyp --reference=data/toy/test.tgt; \
	echo "translations: $(DEMO)/test.hyp"; \
	echo "TensorBoard:  $(VENV)/bin/tensorboard --logdir $(DEMO)/work/tensorboard"; \
	echo "wall time: $$(( $$(date +%s) - start ))s"

test: $(VENV)/.installed
	@$(PY) -m pytest -q --durations=10; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; \
	exit $$status

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(DEMO) data/toy
