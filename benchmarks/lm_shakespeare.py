"""Character language model on tiny-shakespeare: quality in a time budget, and speed.

    python benchmarks/lm_shakespeare.py --budget_minutes=60 [--workdir=runs/lm_shakespeare]

Trains configs/char_shakespeare.py on ../shared/data/tinyshakespeare/input.txt.gz
(contiguous 90/5/5 split) for the budget under <workdir>/run, exports the best
checkpoint to <workdir>/export, then prints:

- valid and test loss (nats/char) and bits per character, with the state carried
  through the split and reset every window;
- training characters/s of our model against a model of the same shape built
  from stock `keras.layers.LSTM(stateful=True)` layers (same embedding, dropout,
  output layer, optimizer, clipping and batches), in alternating short timed
  rounds in this process, and the ratio;
- sampling characters/s of the SavedModel at batch 1 and 32;
- a 500-character sample at temperature 0.8 after the prime "ROMEO:".

`--spm_vocab_size=N` trains a SentencePiece model of N pieces on the training part
and runs configs/spm_shakespeare.py instead (bits per character still divide by
characters). A workdir whose run exists resumes it (with a new budget). The
results also go to <workdir>/results.json.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pathlib
import shutil
import statistics
import sys
import time

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

from absl import app, flags, logging  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_BUDGET = flags.DEFINE_float("budget_minutes", 60.0, "Training time budget.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/lm_shakespeare", "Run and export go here.")
_DATA = flags.DEFINE_string(
    "data",
    str(ROOT.parent / "shared" / "data" / "tinyshakespeare" / "input.txt.gz"),
    "The tiny-shakespeare text.",
)
_SPM = flags.DEFINE_integer("spm_vocab_size", 0, "SentencePiece pieces (0 = characters).")
_ROUNDS = flags.DEFINE_integer("speed_rounds", 3, "Alternating timed rounds per model.")
_STEPS = flags.DEFINE_integer("speed_steps", 8, "Training steps per timed round.")
_SAMPLE = flags.DEFINE_integer("sample_length", 500, "Characters of the printed sample.")


def _load_config(name: str):
    path = ROOT / "configs" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _prepare_spm(config, workdir: str) -> str:
    """A SentencePiece model trained on the training part (the first 90%) of the text."""
    from seq2seq_tf.data import stream, vocab

    text = stream.read_text([config.lm.train_text])
    share = 1.0 - config.lm.valid_fraction - config.lm.test_fraction
    train_text = stream.contiguous_split(text, [share])[0]
    data = os.path.join(workdir, "data")
    os.makedirs(data, exist_ok=True)
    with open(os.path.join(data, "train.txt"), "w", encoding="utf-8") as f:
        f.write(train_text)
    prefix = os.path.join(data, "spm")
    return vocab.train_sentencepiece([f.name], prefix, _SPM.value, character_coverage=1.0)


def _split_scores(run: str) -> dict:
    """Valid and test metrics of the run's best checkpoint, state carried and reset."""
    from seq2seq_tf.tasks import make_task
    from seq2seq_tf.training.checkpoints import restore_model
    from seq2seq_tf.workdir import load_workdir_config

    config, vocab_size = load_workdir_config(run)
    task = make_task(config, vocab_size)
    task.prepare(run)
    model, checkpoint = restore_model(run)
    import tensorflow as tf

    evaluator = task.dev_evaluator(model, lambda name: tf.summary.create_noop_writer())
    out = {"checkpoint": checkpoint}
    for split in ("valid", "test"):
        scores = evaluator.scores(task.splits[split])
        for suffix in ("", "_reset"):
            scores[f"nats_per_char{suffix}"] = scores[f"bits_per_char{suffix}"] * math.log(2)
        out[split] = scores
    return out


def _stock_keras_model(config, vocab_size: int):
    """Our model's shape from stock Keras layers: Embedding, LSTM(stateful=True) x layers,
    Dense, with dropout where ours has it (embeddings, between layers, output)."""
    import keras

    m, batch, window = config.model, int(config.data.batch_size), int(config.lm.window)
    inputs = keras.Input(batch_shape=(batch, window), dtype="int32")
    x = keras.layers.Dropout(m.dropout)(keras.layers.Embedding(vocab_size, m.embedding_dim)(inputs))
    for i in range(m.decoder_layers):
        x = keras.layers.LSTM(m.decoder_units, return_sequences=True, stateful=True)(x)
        if i < m.decoder_layers - 1:
            x = keras.layers.Dropout(m.dropout)(x)
    logits = keras.layers.Dense(vocab_size)(keras.layers.Dropout(m.dropout)(x))
    return keras.Model(inputs, logits)


def _training_speed(config, run: str) -> dict:
    """Characters/s of our train step and of the stock-Keras model's, alternating rounds."""
    import tensorflow as tf

    from seq2seq_tf.tasks import make_task
    from seq2seq_tf.training.loop import build_training, make_train_step
    from seq2seq_tf.training.optimizer import FusedAdam
    from seq2seq_tf.workdir import load_workdir_config

    config, vocab_size = load_workdir_config(run)
    task = make_task(config, vocab_size)
    task.prepare(run)
    dataset = task.train_dataset()
    batches = iter(dataset)
    model, optimizer = build_training(config, task.build_model)
    signature = tuple(tf.TensorSpec(s.shape, s.dtype) for s in dataset.element_spec)
    ours = make_train_step(model, optimizer, config, task.loss_sums, signature)

    stock = _stock_keras_model(config, vocab_size)
    stock_optimizer = FusedAdam(learning_rate=float(config.train.learning_rate))
    stock_optimizer.build(stock.trainable_variables)
    clip = float(config.train.clip_norm)

    @tf.function
    def stock_step(inputs, targets, first):
        with tf.GradientTape() as tape:
            logits = stock(inputs, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(targets, tf.cast(logits, tf.float32))
            )
        grads = tape.gradient(loss, stock.trainable_variables)
        grads, _ = tf.clip_by_global_norm(grads, clip)
        stock_optimizer.apply(grads, stock.trainable_variables)
        return loss

    steps = {
        "ours": lambda batch: float(ours(*batch)[0]),
        "stock_keras": lambda batch: float(stock_step(*batch)),
    }
    chars = int(config.data.batch_size) * int(config.lm.window)
    for run_step in steps.values():  # trace and warm up
        for _ in range(2):
            run_step(next(batches))
    rates = {name: [] for name in steps}
    for _ in range(_ROUNDS.value):
        for name, run_step in steps.items():
            work = [next(batches) for _ in range(_STEPS.value)]
            start = time.perf_counter()
            for batch in work:
                run_step(batch)
            rates[name].append(_STEPS.value * chars / (time.perf_counter() - start))
    ours_rate = statistics.median(rates["ours"])
    stock_rate = statistics.median(rates["stock_keras"])
    return {
        "ours_chars_per_s": ours_rate,
        "stock_keras_chars_per_s": stock_rate,
        "ratio": ours_rate / stock_rate,
        "rounds": rates,
    }


def _sampling(export_path: str, length: int) -> dict:
    import tensorflow as tf

    try:
        import tensorflow_text  # noqa: F401  (SentencePiece models)
    except ImportError:
        pass
    generate = tf.saved_model.load(export_path).signatures["generate"]

    def call(primes, n, temperature=0.8, seed=1):
        out = generate(
            primes=tf.constant(primes),
            length=tf.constant(n),
            temperature=tf.constant(temperature),
            top_k=tf.constant(0),
            top_p=tf.constant(1.0),
            seed=tf.constant(seed),
        )
        return [t.decode("utf-8") for t in out["texts"].numpy()]

    rates = {}
    for batch in (1, 32):
        call(["ROMEO:"] * batch, 5)  # warm up
        measured = []
        for seed in range(3):  # median of three: one call is at the mercy of the scheduler
            start = time.perf_counter()
            texts = call(["ROMEO:"] * batch, length, seed=seed)
            measured.append(sum(len(t) for t in texts) / (time.perf_counter() - start))
        rates[f"batch_{batch}_chars_per_s"] = statistics.median(measured)
    rates["sample"] = call(["ROMEO:"], length, 0.8, seed=17)[0]
    return rates


def main(argv):
    if not os.path.exists(_DATA.value):
        raise app.UsageError(f"tiny-shakespeare not found at {_DATA.value} (--data)")
    logging.set_verbosity("info")
    from seq2seq_tf.serving import export
    from seq2seq_tf.training.loop import train_and_evaluate

    workdir = os.path.abspath(_WORKDIR.value)
    run = os.path.join(workdir, "run")
    config = _load_config("spm_shakespeare" if _SPM.value else "char_shakespeare")
    config.lm.train_text = _DATA.value
    config.train.max_time_s = 60.0 * _BUDGET.value
    if _SPM.value:
        config.data.spm_model = _prepare_spm(config, workdir)

    start = time.perf_counter()
    trained = train_and_evaluate(config, run)
    train_seconds = time.perf_counter() - start
    scores = _split_scores(run)
    export_dir = os.path.join(workdir, "export")
    if os.path.isdir(export_dir):  # ours: a rerun exports afresh
        shutil.rmtree(export_dir)
    exported = export.export(run, export_dir)
    speed = _training_speed(config, run)
    sampling = _sampling(exported, _SAMPLE.value)

    valid, test = scores["valid"], scores["test"]
    print(f"\ntiny-shakespeare, {_BUDGET.value:g}-minute budget: {trained['step']} steps, "
          f"{trained['epoch']:.1f} passes in {train_seconds:.0f}s ({trained['stopped']}); "
          f"best checkpoint {scores['checkpoint']}")  # fmt: skip
    for name, s in (("valid", valid), ("test", test)):
        print(
            f"{name:5s}: {s['nats_per_char']:.4f} nats/char, {s['bits_per_char']:.4f} bits/char "
            f"(state carried); {s['nats_per_char_reset']:.4f} nats/char, "
            f"{s['bits_per_char_reset']:.4f} bits/char (state reset every window)"
        )
    print(
        f"training chars/s: ours {speed['ours_chars_per_s']:.0f}, stock Keras "
        f"LSTM(stateful=True) {speed['stock_keras_chars_per_s']:.0f}, ratio "
        f"{speed['ratio']:.2f} (median of {_ROUNDS.value} alternating rounds of "
        f"{_STEPS.value} steps)"
    )
    print(
        f"sampling chars/s (SavedModel, {_SAMPLE.value} characters, temperature 0.8, median "
        "of 3): "
        f"batch 1 {sampling['batch_1_chars_per_s']:.0f}, "
        f"batch 32 {sampling['batch_32_chars_per_s']:.0f}"
    )
    print(f"targets: test loss <= 1.45 nats/char: {test['nats_per_char'] <= 1.45}; carried "
          f"beats reset: {test['bits_per_char'] < test['bits_per_char_reset']}; training "
          f">= 1.2x stock Keras: {speed['ratio'] >= 1.2}")  # fmt: skip
    print(f'\nsample (temperature 0.8, prime "ROMEO:"):\nROMEO:\u2016{sampling["sample"]}')
    results = {
        "budget_minutes": _BUDGET.value,
        "train": {k: v for k, v in trained.items() if isinstance(v, (int, float, str, bool))},
        "train_seconds": train_seconds,
        "scores": scores,
        "training_speed": speed,
        "sampling": sampling,
        "export": exported,
    }
    with open(os.path.join(workdir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    cli.run(main)
