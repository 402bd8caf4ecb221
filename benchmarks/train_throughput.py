"""Training throughput of the rnn-base shape against references measured in the same run.

    python benchmarks/train_throughput.py                    # ours vs stock Keras, fp32
    python benchmarks/train_throughput.py --scaling          # + batch-size and length tables
    python benchmarks/train_throughput.py --vs_opennmt       # + the OpenNMT-tf peer, twice

Batches are real Multi30k batches (data/multi30k, made by prepare_corpus.py and
train_sentencepiece.py; the toy corpus when absent). Warm-up steps are excluded.
It prints steps/s, source and target tokens/s counting only real (non-pad) tokens,
the padding share, peak RSS, and model FLOP/s as a fraction of an fp32 GEMM peak
(2048 x 2048 matmul) measured in the same process.

Model FLOPs per step (forward + backward = 3 x forward, 2 FLOPs per multiply-add):
    6 * (tgt_tokens * decoder_macs + src_tokens * encoder_macs
         + sum over sentences of tgt_len * src_len * 2 * memory_dim)      (attention)
with decoder_macs the per-token multiply-adds of the decoder cells, the attention
key projection share, the attention layer and the output projection, and
encoder_macs those of the encoder cells (see `macs_per_token`). Embedding lookups,
elementwise gates and the softmax are left out, as is usual.

The stock-Keras reference has the same shape built the way a user would write it:
Bidirectional(LSTM) x 2 encoder, LSTM x 2 decoder over the whole target with the
encoder's final states, keras.layers.Attention (dot) after the decoder, no input
feeding, the same loss, optimizer and batches.

With --vs_opennmt the peer harness ../shared/bench/opennmt_tf/run.sh (OpenNMT-tf
2.32 in its own virtual environment, the same shape on the same corpus) runs
back to back with ours, alternating twice: ours, peer, ours, peer. The ratio is
our mean target tokens/s over the peer's (its log's steady-state figure, which
skips its first 100 steps).
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import resource
import subprocess
import tempfile
import time

from seq2seq_tf import cli  # noqa: E402  (before TensorFlow: quiets its start-up)

cli.quiet_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from seq2seq_tf.data import parallel as data  # noqa: E402
from seq2seq_tf.data import vocab as tokenizer  # noqa: E402
from seq2seq_tf.layers import loop_ops  # noqa: E402
from seq2seq_tf.models import build_model  # noqa: E402
from seq2seq_tf.tasks.translation import TranslationTask, target_piece_ids  # noqa: E402
from seq2seq_tf.training import loop as train  # noqa: E402
from seq2seq_tf.training.losses import sequence_loss  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]

_CONFIG = flags.DEFINE_string("config", str(ROOT / "configs/multi30k_en_de.py"), "Model config.")
_DATA = flags.DEFINE_string("data_dir", "data/multi30k", "Prepared Multi30k (toy when absent).")
_STEPS = flags.DEFINE_integer("steps", 200, "Measured steps.")
_WARMUP = flags.DEFINE_integer("warmup", 20, "Unmeasured steps first (tracing, caches).")
_BATCH = flags.DEFINE_integer("batch_size", 64, "Sentences per batch.")
_BATCH_TOKENS = flags.DEFINE_integer("batch_tokens", 0, "Token budget per batch (0: sentences).")
_REFERENCE = flags.DEFINE_bool("reference", True, "Also measure the stock-Keras reference.")
_SCALING = flags.DEFINE_bool("scaling", False, "Step time vs batch size and vs length bucket.")
_JIT = flags.DEFINE_bool("jit", False, "Compile our train step with XLA.")
_DEFER = flags.DEFINE_bool(
    "defer_weight_gradients",
    True,
    "Our loops take LSTM weight gradients after the loop (cells.DeferredKernel); "
    "--nodefer_weight_gradients measures the per-step form, for the lever table.",
)
_VS_OPENNMT = flags.DEFINE_bool(
    "vs_opennmt", False, "Alternate twice with the OpenNMT-tf peer harness; print the ratio."
)
_PEER_DIR = flags.DEFINE_string(
    "opennmt_workdir",
    os.path.join(tempfile.gettempdir(), "onmt-peer"),
    "The peer's virtual environment, data and model (kept between runs).",
)
_PEER_STEPS = flags.DEFINE_integer(
    "opennmt_steps", 300, "Peer training steps per round (its first 100 are not measured)."
)
_TARGET_VOCAB_ONLY = flags.DEFINE_bool(
    "target_vocab_only",
    False,
    "Our output layer scores only the pieces of the training targets "
    "(model.target_vocab_only); the reference and the peer keep the whole vocabulary.",
)
_PRECISION = flags.DEFINE_enum(
    "precision", "float32", ["float32", "mixed_bfloat16"], "Our model's train.precision."
)


def _load_config(path: str):
    spec = importlib.util.spec_from_file_location("bench_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _lstm_macs(inputs: int, units: int) -> int:
    return 4 * units * (inputs + units)


def macs_per_token(m) -> tuple[int, int, int]:
    """(encoder MACs per source token, decoder MACs per target token, memory width)."""
    memory = (2 if m.encoder_merge == "concat" else 1) * m.encoder_units
    encoder, width = 0, m.embedding_dim
    for _ in range(m.encoder_layers):
        encoder += 2 * _lstm_macs(width, m.encoder_units)
        width = memory
    for _ in range(m.encoder_uni_layers):
        encoder += _lstm_macs(width, memory)
        width = memory
    encoder += memory * m.decoder_units  # attention keys (Luong general), once per source token
    first_in = m.embedding_dim + (m.attention_units if m.input_feeding else 0)
    decoder = _lstm_macs(first_in, m.decoder_units)
    decoder += (m.decoder_layers - 1) * _lstm_macs(m.decoder_units, m.decoder_units)
    decoder += (memory + m.decoder_units) * m.attention_units  # attention layer
    return encoder, decoder, memory


def gemm_peak_flops(n: int = 2048, repeats: int = 20) -> float:
    """fp32 FLOP/s of an n x n matmul chain in this process (the machine's practical peak)."""
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n]) / n

    @tf.function
    def chain(x):
        for _ in range(repeats):
            x = tf.matmul(x, b)
        return x

    chain(a).numpy()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        chain(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 * repeats / best


class StockKerasSeq2Seq(keras.Model):
    """What a user writes by hand from stock layers (see the module docstring)."""

    def __init__(self, vocab_size: int, m):
        super().__init__()
        self.src_emb = keras.layers.Embedding(vocab_size, m.embedding_dim, mask_zero=True)
        self.tgt_emb = keras.layers.Embedding(vocab_size, m.embedding_dim, mask_zero=True)
        self.enc = [
            keras.layers.Bidirectional(
                keras.layers.LSTM(m.encoder_units, return_sequences=True, return_state=True)
            )
            for _ in range(m.encoder_layers)
        ]
        self.dec = [
            keras.layers.LSTM(m.decoder_units, return_sequences=True, return_state=True)
            for _ in range(m.decoder_layers)
        ]
        self.drop = keras.layers.Dropout(m.dropout)
        self.attention = keras.layers.Attention(score_mode="dot")
        self.attn_dense = keras.layers.Dense(m.attention_units, activation="tanh", use_bias=False)
        self.proj = keras.layers.Dense(vocab_size)

    def call(self, inputs, training=False):
        src, tgt_in = inputs
        src_mask, tgt_mask = src != 0, tgt_in != 0
        x, states = self.src_emb(src), []
        for layer in self.enc:
            x, fh, fc, bh, bc = layer(x, mask=src_mask, training=training)
            x = self.drop(x, training=training)
            states.append([tf.concat([fh, bh], -1), tf.concat([fc, bc], -1)])
        y = self.tgt_emb(tgt_in)
        for layer, state in zip(self.dec, states):
            y, _, _ = layer(y, mask=tgt_mask, initial_state=state, training=training)
            y = self.drop(y, training=training)
        context = self.attention([y, x], mask=[tgt_mask, src_mask])
        return self.proj(self.attn_dense(tf.concat([context, y], -1)))


def _reference_step(model, optimizer, label_smoothing: float, clip_norm: float):
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec, spec])
    def step(source, target_in, target_out):
        with tf.GradientTape() as tape:
            logits = model((source, target_in), training=True)
            loss_sum, nll_sum, tokens = sequence_loss(logits, target_out, label_smoothing)
            loss = loss_sum / tf.maximum(tokens, 1.0)
        grads = tape.gradient(loss, model.trainable_variables)
        grads, grad_norm = tf.clip_by_global_norm(grads, clip_norm)
        optimizer.apply(grads, model.trainable_variables)
        return loss_sum, nll_sum, tokens, grad_norm

    return step


def fixed_batches(config, count: int, batch_size: int, batch_tokens: int) -> list:
    """`count` real training batches, materialized so every contender sees the same ones."""
    d = config.data
    sp = tokenizer.make_tokenizer(tokenizer.read_model_proto(d.spm_model))
    boundaries = tuple(d.bucket_boundaries) or (12, 13, 15, 16, 17, 18, 20, 22, 25)
    dataset = data.make_train_dataset(
        d.train_src,
        d.train_tgt,
        sp,
        batch_size=batch_size,
        max_src_len=d.max_src_len,
        max_tgt_len=d.max_tgt_len,
        bucket_boundaries=boundaries,
        shuffle_buffer=d.shuffle_buffer,
        seed=d.seed,
        batch_tokens=batch_tokens,
    )
    return [tuple(t.numpy() for t in batch) for batch in dataset.take(count)]


def measure(step_fn, batches: list, warmup: int) -> dict:
    """Runs warmup + measured steps; counts real tokens of the measured ones."""
    for source, target_in, target_out in batches[:warmup]:
        step_fn(source, target_in, target_out)[0].numpy()
    measured = batches[warmup:]
    start = time.perf_counter()
    for source, target_in, target_out in measured:
        result = step_fn(source, target_in, target_out)
    result[0].numpy()
    seconds = time.perf_counter() - start
    src_real = sum(int((s != 0).sum()) for s, _, _ in measured)
    tgt_real = sum(int((t != 0).sum()) for _, _, t in measured)
    padded = sum(s.size + t.size for s, _, t in measured)
    attention_pairs = sum(int(((s != 0).sum(1) * (t != 0).sum(1)).sum()) for s, _, t in measured)
    return {
        "steps": len(measured),
        "seconds": seconds,
        "steps_per_sec": len(measured) / seconds,
        "src_tokens_per_sec": src_real / seconds,
        "tgt_tokens_per_sec": tgt_real / seconds,
        "padding_share": 1.0 - (src_real + tgt_real) / max(padded, 1),
        "src_tokens": src_real,
        "tgt_tokens": tgt_real,
        "attention_pairs": attention_pairs,
    }


def model_flops(config, vocab_size: int, result: dict) -> float:
    """FLOPs of the measured steps by the formula in the module docstring."""
    encoder, decoder, memory = macs_per_token(config.model)
    decoder += config.model.attention_units * vocab_size  # output projection
    macs = (
        result["tgt_tokens"] * decoder
        + result["src_tokens"] * encoder
        + result["attention_pairs"] * 2 * memory
    )
    return 6.0 * macs


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _ours(config, vocab_size: int, output_ids: tuple[int, ...] = ()):
    model, optimizer = train.build_training(
        config, lambda: build_model(config.model, vocab_size, output_ids=output_ids)
    )
    signature = (tf.TensorSpec([None, None], tf.int32),) * 3
    loss_sums = TranslationTask(config, vocab_size).loss_sums
    step = train.make_train_step(model, optimizer, config, loss_sums, signature)
    if _JIT.value:
        step = tf.function(step.python_function, jit_compile=True, reduce_retracing=True)
    return model, step


def _stock(config, vocab_size: int):
    model = StockKerasSeq2Seq(vocab_size, config.model)
    optimizer = keras.optimizers.Adam(config.train.learning_rate)
    step = _reference_step(
        model, optimizer, float(config.train.label_smoothing), float(config.train.clip_norm)
    )
    return model, step


def _report(name: str, result: dict, flops: float, peak: float, params: int) -> None:
    flops_per_sec = flops / result["seconds"]
    print(
        f"{name:<22} {result['steps_per_sec']:6.2f} steps/s  "
        f"{result['tgt_tokens_per_sec']:7.0f} tgt tok/s  {result['src_tokens_per_sec']:7.0f} "
        f"src tok/s  padding {100 * result['padding_share']:4.1f}%  "
        f"{flops_per_sec / 1e9:6.1f} GFLOP/s = {100 * flops_per_sec / peak:4.1f}% of GEMM peak  "
        f"({params / 1e6:.1f}M params)"
    )


def main(argv):
    config = _load_config(_CONFIG.value)
    config.train.precision = _PRECISION.value
    data_dir = pathlib.Path(_DATA.value)
    if (data_dir / "train.en").exists() and (data_dir / "spm.model").exists():
        d = config.data
        d.train_src, d.train_tgt = str(data_dir / "train.en"), str(data_dir / "train.de")
        d.spm_model = str(data_dir / "spm.model")
        corpus = f"Multi30k ({data_dir})"
    else:
        from seq2seq_tf.config import toy_config

        toy = toy_config()
        config.data.train_src, config.data.train_tgt = toy.data.train_src, toy.data.train_tgt
        config.data.spm_model = toy.data.spm_model
        corpus = "toy corpus (data/toy; Multi30k not prepared)"
    vocab_size = tokenizer.vocab_size_of(config.data.spm_model)
    keras.utils.set_random_seed(0)
    total = _WARMUP.value + _STEPS.value
    batches = fixed_batches(config, total, _BATCH.value, _BATCH_TOKENS.value)
    peak = gemm_peak_flops()
    print(
        f"corpus: {corpus}; {_STEPS.value} measured steps after {_WARMUP.value} warm-up; "
        f"ours in {_PRECISION.value}{' with XLA' if _JIT.value else ''}"
        f"{'' if _DEFER.value else ', weight gradients per step'}, reference in float32"
    )
    print(f"fp32 GEMM peak (2048x2048 matmul, this process): {peak / 1e9:.1f} GFLOP/s")
    output_ids, scored = (), vocab_size
    if _TARGET_VOCAB_ONLY.value:
        pieces = tokenizer.make_tokenizer(tokenizer.read_model_proto(config.data.spm_model))
        with open(config.data.train_tgt, encoding="utf-8") as f:
            output_ids = target_piece_ids([line.rstrip("\n") for line in f], pieces)
        scored = len(output_ids)
        print(f"our output layer scores {scored} of {vocab_size} pieces (target_vocab_only)")
    with loop_ops.options(defer_weight_gradients=_DEFER.value):  # read while tracing
        model, step = _ours(config, vocab_size, output_ids)
        ours = measure(step, batches, _WARMUP.value)
    _report("seq2seq_tf", ours, model_flops(config, scored, ours), peak, model.count_params())
    rss_ours = peak_rss_gb()
    if _REFERENCE.value:
        ref_model, ref_step = _stock(config, vocab_size)
        ref = measure(ref_step, batches, _WARMUP.value)
        ref_config = config.copy_and_resolve_references()
        ref_config.model.input_feeding = False
        flops = model_flops(ref_config, vocab_size, ref)
        _report("stock Keras (no feed)", ref, flops, peak, ref_model.count_params())
        ratio = ours["tgt_tokens_per_sec"] / ref["tgt_tokens_per_sec"]
        print(f"ratio vs stock Keras (target tokens/s): {ratio:.2f}")
    print(f"peak RSS after our run: {rss_ours:.2f} GB; at the end: {peak_rss_gb():.2f} GB")
    if _VS_OPENNMT.value:
        _versus_opennmt(ours, step, batches)
    if _SCALING.value:
        _scaling(config, vocab_size, step)


def run_opennmt_peer() -> dict:
    """One run of the peer harness; its JSON line (steps_per_s, src_tok_s, tgt_tok_s)."""
    harness = ROOT.parent / "shared/bench/opennmt_tf/run.sh"
    if not harness.exists():
        raise app.UsageError(f"--vs_opennmt needs the peer harness at {harness}")
    command = ["bash", str(harness), _PEER_DIR.value, str(_PEER_STEPS.value)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}); see {_PEER_DIR.value}/*.log\n"
            f"{done.stderr[-2000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _versus_opennmt(first: dict, step, batches: list) -> None:
    """Ours, peer, ours, peer (the first of ours is the run already reported)."""
    ours, peer = [first], []
    for round_ in (1, 2):
        if round_ == 2:
            ours.append(measure(step, batches, _WARMUP.value))
        peer.append(run_opennmt_peer())
        print(
            f"round {round_}: seq2seq_tf {ours[-1]['steps_per_sec']:.2f} steps/s "
            f"{ours[-1]['tgt_tokens_per_sec']:.0f} tgt tok/s | OpenNMT-tf "
            f"{peer[-1]['steps_per_s']:.2f} steps/s {peer[-1]['tgt_tok_s']:.0f} tgt tok/s"
        )
    ratio = np.mean([r["tgt_tokens_per_sec"] for r in ours]) / np.mean(
        [r["tgt_tok_s"] for r in peer]
    )
    print(f"ratio vs OpenNMT-tf: {ratio:.2f}")
    # The harness's processes are this one's only children; Linux folds a waited-for
    # grandchild's peak into its parent's, so this is the peer's training process.
    peer_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(f"OpenNMT-tf peak RSS (its largest process): {peer_rss:.2f} GB")


def _scaling(config, vocab_size: int, step) -> None:
    """Step time vs batch size, and vs source length bucket at batch 64."""
    print("\nbatch size   steps/s   ms/step   tgt tok/s   ms per sentence")
    for batch_size in (16, 32, 64, 128):
        batches = fixed_batches(config, 10 + 40, batch_size, 0)
        result = measure(step, batches, 10)
        ms = 1000 / result["steps_per_sec"]
        print(
            f"{batch_size:10d}   {result['steps_per_sec']:7.2f}   {ms:7.1f}   "
            f"{result['tgt_tokens_per_sec']:9.0f}   {ms / batch_size:15.2f}"
        )
    print("\nsource length   steps/s   ms/step   ms per source token")
    batches = fixed_batches(config, 400, 64, 0)
    by_len: dict = {}
    for batch in batches:
        by_len.setdefault(batch[0].shape[1], []).append(batch)
    for length in sorted(by_len):
        group = by_len[length]
        if len(group) < 8:
            continue
        result = measure(step, group[:2] + group[:16], 2)
        ms = 1000 / result["steps_per_sec"]
        tokens = np.mean([int((b[0] != 0).sum()) for b in group[:16]])
        print(f"{length:13d}   {result['steps_per_sec']:7.2f}   {ms:7.1f}   {ms / tokens:19.3f}")


if __name__ == "__main__":
    cli.run(main)
