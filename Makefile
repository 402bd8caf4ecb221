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

# One pytest per shard (whole test modules, `--shard` in tests/conftest.py), all at once:
# the tests are mostly single-threaded, so on 2 cores two shards take about 2/3 of the
# time of one. Shard 0 prints as it goes; the others' output follows when they end.
# `make test SHARDS=1` runs it in one process; PYTEST_ARGS="tests/search -x" picks tests.
# pytest's exit 5 (no tests collected) fails the target. With more than one shard each
# runs TensorFlow's ops on one thread (TF_NUM_INTRAOP_THREADS, unless set): two shards of
# two-thread ops on 2 cores contend (measured 5-15% slower). The shards' balance comes
# from tests/module_seconds.json; PYTEST_ARGS=--record-seconds=tests/module_seconds.json
# measures it again.
SHARDS ?= 2
PYTEST_ARGS ?=

test: $(VENV)/.installed
	@mkdir -p runs; start=$$(date +%s); pids=(); \
	if [ $(SHARDS) -gt 1 ]; then export TF_NUM_INTRAOP_THREADS=$${TF_NUM_INTRAOP_THREADS:-1}; fi; \
	for k in $$(seq 1 $$(( $(SHARDS) - 1 ))); do \
	  $(PY) -m pytest -q --durations=5 --shard=$$k/$(SHARDS) $(PYTEST_ARGS) >runs/test-shard$$k.log 2>&1 & \
	  pids+=($$!); \
	done; \
	$(PY) -m pytest -q --durations=5 --shard=0/$(SHARDS) $(PYTEST_ARGS); codes=($$?); \
	for pid in "$${pids[@]}"; do wait $$pid; codes+=($$?); done; \
	for k in $$(seq 1 $$(( $(SHARDS) - 1 ))); do \
	  echo "== shard $$k/$(SHARDS) (runs/test-shard$$k.log)"; cat runs/test-shard$$k.log; \
	done; \
	status=0; \
	for k in "$${!codes[@]}"; do \
	  code=$${codes[$$k]}; \
	  if [ $$code -eq 5 ]; then echo "shard $$k/$(SHARDS): pytest collected no tests: failing (fewer modules than shards? SHARDS=1)"; status=1; \
	  elif [ $$code -ne 0 ]; then echo "shard $$k/$(SHARDS) failed (exit $$code)"; status=1; fi; \
	done; \
	echo "test wall time: $$(( $$(date +%s) - start ))s, $(SHARDS) shard(s)"; \
	exit $$status

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(DEMO) data/toy
