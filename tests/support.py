"""Helpers the tests share (fixtures live in conftest.py)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import keras

ROOT = pathlib.Path(__file__).resolve().parents[1]
MULTI30K = ROOT.parent / "shared" / "data" / "multi30k"


def load_script(name: str):
    """Imports a data_scripts/ file as a module."""
    path = ROOT / "data_scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def tiny_config(toy_data: dict, **train):
    """A seconds-sized model on the toy corpus."""
    from seq2seq_tf.config import default_config

    config = default_config()
    config.data.train_src = toy_data["train_src"]
    config.data.train_tgt = toy_data["train_tgt"]
    config.data.spm_model = toy_data["spm_model"]
    config.data.max_src_len = 48
    config.data.max_tgt_len = 48
    config.data.batch_size = 32
    config.data.bucket_boundaries = (10, 16, 24)
    config.data.shuffle_buffer = 1000
    config.model.embedding_dim = 16
    config.model.encoder_layers = 1
    config.model.encoder_units = 16
    config.model.decoder_layers = 1
    config.model.decoder_units = 32
    config.model.attention_units = 32
    config.model.dropout = 0.0
    config.train.num_steps = 40
    config.train.learning_rate = 5e-3
    config.train.warmup_steps = 0
    config.train.log_every = 10
    config.train.checkpoint_every = 20
    for key, value in train.items():
        config.train[key] = value
    return config


def model_config(**fields):
    """`config.model` of the default schema with `fields` changed (unlocked copy)."""
    from seq2seq_tf.config import default_config

    model = default_config().model
    for key, value in fields.items():
        model[key] = value
    return model


def make_seq2seq(vocab_size: int = 40, **fields):
    """A Seq2Seq built by `models.build_model` from `model_config(**fields)` (dropout 0
    unless given)."""
    from seq2seq_tf.models import build_model

    fields.setdefault("dropout", 0.0)
    return build_model(model_config(**fields), vocab_size)


# Keras twins of our cells, for the equivalence tests of cells and Recurrent.
KERAS_TWINS = {
    "lstm": lambda u: keras.layers.LSTMCell(u),
    "gru": lambda u: keras.layers.GRUCell(u, reset_after=True),
    "gru_reset_before": lambda u: keras.layers.GRUCell(u, reset_after=False),
    "simple_rnn": lambda u: keras.layers.SimpleRNNCell(u),
}


def copy_lstm_weights(ours, reference) -> None:
    """Our LSTM cell's weights into a `keras.layers.LSTMCell` (same layout)."""
    reference.kernel.assign(ours.kernel)
    reference.recurrent_kernel.assign(ours.recurrent_kernel)
    reference.bias.assign(ours.bias)


def randomize_weights(layer, seed: int) -> None:
    """Random values in every weight (biases and norm parameters included)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for weight in layer.weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype("float32"))


def table_step(table):
    """A scripted search step: logits = table[t, previous id], t counted per row (beam
    search tiles it), so what was fed decides what follows."""
    import tensorflow as tf

    table = tf.constant(table, tf.float32)  # steps x vocab x vocab

    def step_fn(ids, state):
        t = tf.minimum(state["t"], table.shape[0] - 1)
        return tf.gather_nd(table, tf.stack([t, ids], axis=1)), {"t": state["t"] + 1}

    return step_fn


def random_table(vocab: int, seed: int = 0, steps: int = 12):
    """A `table_step` table where pad (0) is never chosen and EOS (3) grows likelier."""
    import numpy as np

    table = np.random.default_rng(seed).normal(size=(steps, vocab, vocab)) * 2.0
    table[..., 0] -= 20.0  # pad: never chosen
    table[:, :, 3] += np.linspace(-3.0, 3.0, steps)[:, None]  # ends grow likelier
    return table


def scripted_step(vocab: int, script):
    """A search step that emits script[b][t] with probability ~1 at step t."""
    import tensorflow as tf

    script = tf.constant(script, tf.int32)  # batch x steps

    def step_fn(ids, state):
        t = state["t"]
        column = tf.gather(script, tf.minimum(t, script.shape[1] - 1), axis=1)
        logits = tf.one_hot(column, vocab) * 3.0
        return logits, {"t": t + 1}

    return step_fn


def history_step(vocab: int, table, as_tuple: bool):
    """A search step whose state carries history: logits = table[t, previous id] - 2 * (how
    often each token was fed), the state a plain nested tuple or a dict with other key names."""
    import tensorflow as tf

    step = table_step(table)

    def step_fn(ids, state):
        t, (seen,) = state if as_tuple else (state["t"], (state["seen"],))
        logits, _ = step(ids, {"t": t})
        seen = seen + tf.one_hot(ids, vocab)
        logits -= 2.0 * seen
        return logits, (t + 1, (seen,)) if as_tuple else {"t": t + 1, "seen": seen}

    return step_fn


def make_lm_text(path, lines: int = 2500, seed: int = 0) -> str:
    """A generated text with structure a tiny language model learns in seconds."""
    import random

    rng = random.Random(seed)
    names = ["ROMEO", "JULIET", "NURSE"]
    words = "the cat sat on a mat and dog ran to it so we go by my love thy".split()
    out = []
    for i in range(lines):
        if i % 5 == 0:
            out.append(f"{rng.choice(names)}:")
        out.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) + ".")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return str(path)


def tiny_lm_config(train_text: str, **train):
    """A seconds-sized character language model on `train_text` (90/5/5 split)."""
    from seq2seq_tf.config import default_config

    config = default_config()
    config.task = "language_model"
    config.lm.train_text = train_text
    config.lm.valid_fraction = 0.05
    config.lm.test_fraction = 0.05
    config.lm.window = 24
    config.lm.sample_length = 40
    config.data.batch_size = 8
    config.model.embedding_dim = 16
    config.model.decoder_layers = 2
    config.model.decoder_units = 32
    config.model.dropout = 0.0
    config.train.num_steps = 60
    config.train.learning_rate = 5e-3
    config.train.warmup_steps = 0
    config.train.label_smoothing = 0.0
    config.train.log_every = 10
    config.train.eval_every = 0
    config.train.checkpoint_every = 30
    for key, value in train.items():
        config.train[key] = value
    return config


def tiny_caption_config(shapes_dir: str, **caption):
    """A seconds-sized captioner on `shapes_data` (32x32 images, an 8x8 grid)."""
    from seq2seq_tf.config import default_config

    config = default_config()
    config.task = "captioning"
    c = config.caption
    c.train_captions = f"{shapes_dir}/train/captions.txt"
    c.valid_captions = f"{shapes_dir}/valid/captions.txt"
    c.image_size = 32
    c.cnn_filters = (8, 16)
    c.attention_penalty = 0.1
    c.max_length = 20
    c.overlays = 1
    for key, value in caption.items():
        c[key] = value
    m = config.model
    m.embedding_dim = 16
    m.decoder_layers = 1
    m.decoder_units = 32
    m.attention_units = 32
    m.attention = "bahdanau"
    m.attention_placement = "bahdanau"
    m.input_feeding = False
    m.bridge = "mean"
    m.dropout = 0.0
    config.data.batch_size = 16
    t = config.train
    t.num_steps = 30
    t.learning_rate = 5e-3
    t.warmup_steps = 0
    t.log_every = 10
    t.eval_every = 15
    t.checkpoint_every = 15
    return config
