"""Seq2Seq assembly: bridges, teacher forcing on real tokens, checkpoint and config round trips."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf
from support import make_seq2seq

from seq2seq_tf.data import parallel, vocab
from seq2seq_tf.decoders.rnn import PLACEMENTS, RNNDecoder
from seq2seq_tf.encoders.text import BidirectionalEncoder
from seq2seq_tf.layers.attention import ATTENTION_TYPES
from seq2seq_tf.layers.bridges import BRIDGE_TYPES, CopyBridge, DenseBridge, ZerosBridge
from seq2seq_tf.models import Seq2Seq
from seq2seq_tf.training.losses import sequence_loss, token_cross_entropy

SOURCE = tf.constant([[5, 6, 7, 3, 0], [4, 5, 6, 7, 3]])
TARGET_IN = tf.constant([[2, 9, 10, 11], [2, 12, 13, 0]])


def _model(**fields):
    """The old `Seq2Seq(40, 8, 2, 6, 2, 12, 10, ...)`."""
    sizes = dict(
        embedding_dim=8,
        encoder_layers=2,
        encoder_units=6,
        decoder_layers=2,
        decoder_units=12,
        attention_units=10,
    )
    return make_seq2seq(40, **{**sizes, **fields})


BRIDGE_CLASSES = dict(zeros=ZerosBridge, copy=CopyBridge, dense=DenseBridge, mean=DenseBridge)


@pytest.mark.parametrize(
    "bridge,enc_units,dec_units",
    [("zeros", 6, 10), ("copy", 5, 10), ("dense", 6, 10), ("mean", 6, 10)],
)
def test_bridges_build_and_run(bridge, enc_units, dec_units):
    assert set(BRIDGE_CLASSES) == set(BRIDGE_TYPES)
    model = _model(encoder_units=enc_units, decoder_units=dec_units, attention_units=12,
                   bridge=bridge)  # fmt: skip
    assert type(model.bridge) is BRIDGE_CLASSES[bridge]
    assert isinstance(model.encoder, BidirectionalEncoder)
    assert isinstance(model.decoder, RNNDecoder)
    assert model((SOURCE, TARGET_IN)).shape == (2, 4, 40)
    state = model.initial_state(SOURCE)
    shapes = [[tuple(s.shape) for s in layer] for layer in state["cells"]]
    assert shapes == [[(2, dec_units)] * 2] * 2  # 2 LSTM layers: (h, c)
    if bridge == "zeros":
        assert np.all(state["cells"][0][0].numpy() == 0)
    else:
        assert np.any(state["cells"][0][0].numpy() != 0)
    if bridge == "copy":  # the encoder's final states as they are
        memory = model.encoder(SOURCE)
        for layer, want in zip(state["cells"], memory.final_states):
            for a, b in zip(layer, want):
                np.testing.assert_array_equal(a, b)
    if bridge in ("dense", "mean"):
        memory_width = 2 * enc_units
        width = memory_width if bridge == "mean" else 2 * 2 * memory_width  # 2 layers x (h, c)
        assert model.bridge.projection.kernel.shape == (width, 4 * dec_units)


def test_teacher_forced_logits_and_their_gradients_equal_the_full_logits_at_real_positions():
    """Training's output layer skips padding; loss and every gradient stay the same."""
    model = _model(bridge="copy")
    target_out = tf.constant([[9, 10, 11, 3], [12, 13, 3, 0]])

    def loss_and_gradients(real_tokens_only):
        with tf.GradientTape() as tape:
            if real_tokens_only:
                logits, labels = model.teacher_forced(SOURCE, TARGET_IN, target_out)
                smoothed, _ = token_cross_entropy(logits, labels, 0.1)
                loss = tf.reduce_sum(smoothed)
            else:
                loss, _, _ = sequence_loss(model((SOURCE, TARGET_IN)), target_out, 0.1)
        return loss, tape.gradient(loss, model.trainable_variables)

    logits, labels = model.teacher_forced(SOURCE, TARGET_IN, target_out)
    full = model((SOURCE, TARGET_IN))
    real = tf.transpose(target_out != 0)  # time-major order
    np.testing.assert_allclose(logits, tf.boolean_mask(tf.transpose(full, [1, 0, 2]), real),
                               atol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(labels, [9, 12, 10, 13, 11, 3, 3])
    loss, grads = loss_and_gradients(True)
    loss_full, grads_full = loss_and_gradients(False)
    np.testing.assert_allclose(loss, loss_full, rtol=1e-6)
    for variable, got, want in zip(model.trainable_variables, grads, grads_full):
        np.testing.assert_allclose(tf.convert_to_tensor(got), tf.convert_to_tensor(want),
                                   atol=1e-6, err_msg=variable.path)  # fmt: skip


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = _model(bridge="copy")
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    clone = _model(bridge="copy")
    tf.train.Checkpoint(model=clone).restore(path).assert_consumed()
    np.testing.assert_array_equal(model((SOURCE, TARGET_IN)), clone((SOURCE, TARGET_IN)))


def test_config_round_trip():
    model = _model(decoder_layers=1, bridge="dense", dropout=0.2)
    clone = Seq2Seq.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert len(clone.weights) == len(model.weights)
    assert isinstance(clone.bridge, DenseBridge) and clone.bridge.source == "final_states"
    assert clone.decoder.dropout == clone.encoder.dropout == 0.2
    assert keras.saving.get_registered_object("seq2seq_tf>Seq2Seq") is Seq2Seq


def test_composed_from_parts():
    encoder = BidirectionalEncoder(40, 8, 1, 6)
    encoder.build((None, None))  # parts may come built
    decoder = RNNDecoder(40, 8, 1, 12, attention_units=10)
    bridge = CopyBridge(decoder.state_sizes)
    model = Seq2Seq(encoder, decoder, bridge)
    assert model.encoder is encoder and model.decoder is decoder and model.bridge is bridge
    assert model.vocab_size == 40 and model.beam_invariant == ("memory", "keys", "mask")
    assert model((SOURCE, TARGET_IN)).shape == (2, 4, 40)


FACTORS = {
    "cell": ("lstm", "gru", "gru_reset_before", "simple_rnn", "layer_norm_lstm"),
    "attention": ATTENTION_TYPES,
    "input_feeding": (True, False),
    "bridge": BRIDGE_TYPES,
    "residual": (False, True),
    "tie_embeddings": (False, True),
    "attention_placement": PLACEMENTS,
}


def _valid(choice: dict) -> bool:
    return choice.get("attention_placement", "luong") != "bahdanau" or not choice.get(
        "input_feeding", False
    )


def _pairwise_variants() -> list[dict]:
    """A small set of combinations in which every valid pair of factor values occurs.

    The full product (2,400 combinations) is too slow for CI; every interaction
    between two options is what breaks in practice, and this covers all of them.
    """
    names = list(FACTORS)
    needed = set()
    for i, j in itertools.combinations(range(len(names)), 2):
        for u, v in itertools.product(FACTORS[names[i]], FACTORS[names[j]]):
            if _valid({names[i]: u, names[j]: v}):
                needed.add((i, u, j, v))
    candidates = [dict(zip(names, values)) for values in itertools.product(*FACTORS.values())]
    candidates = [c for c in candidates if _valid(c)]
    index_pairs = list(itertools.combinations(range(len(names)), 2))

    def pairs(c):
        return {(i, c[names[i]], j, c[names[j]]) for i, j in index_pairs}

    chosen = []
    while needed:
        best = max(candidates, key=lambda c: len(pairs(c) & needed))
        needed -= pairs(best)
        chosen.append(best)
    return chosen


def _options(choice: dict) -> dict:
    """config.model fields for one combination."""
    options = dict(choice)
    cell = options.pop("cell")
    residual = options.pop("residual")
    return {**options, "encoder_cell": cell, "decoder_cell": cell,
            "encoder_residual": residual, "decoder_residual": residual}  # fmt: skip


VARIANTS = [_options(c) for c in _pairwise_variants()] + [
    dict(encoder_uni_layers=2, encoder_residual=True, decoder_residual=True, bridge="dense",
         attention_placement="gnmt", input_feeding=False),
    dict(encoder_merge="sum", bridge="dense", attention="luong_concat"),
    dict(share_embeddings=True, tie_embeddings=True, recurrent_dropout=0.3, bridge="dense",
         encoder_cell="gru", decoder_cell="lstm"),
]  # fmt: skip


@pytest.fixture(scope="module")
def toy_batch(toy_data):
    """One real batch of the toy corpus, through the input pipeline."""
    proto = vocab.read_model_proto(toy_data["spm_model"])
    dataset = parallel.make_train_dataset(
        toy_data["train_src"], toy_data["train_tgt"], vocab.make_tokenizer(proto),
        batch_size=8, max_src_len=48, max_tgt_len=48, bucket_boundaries=(12,),
        shuffle_buffer=100, seed=1,
    )  # fmt: skip
    return next(iter(dataset)), vocab.vocab_size_of(toy_data["spm_model"])


def test_pairwise_variants_cover_every_pair():
    assert 25 <= len(VARIANTS) <= 45  # at least cells x attentions; far fewer than 2,400
    assert {v.get("bridge") for v in VARIANTS} == set(BRIDGE_TYPES)


def _variant(vocab_size=40, **options):
    # embedding 12 == attention_units so tied embeddings fit; 2 * 6 == 12 decoder units.
    return make_seq2seq(vocab_size, embedding_dim=12, encoder_layers=2, encoder_units=6,
                        decoder_layers=2, decoder_units=12, attention_units=12,
                        **options)  # fmt: skip


@pytest.mark.parametrize("options", VARIANTS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_variant_step_config_checkpoint_and_training(options, toy_batch, tmp_path):
    keras.utils.set_random_seed(0)
    model = _variant(toy_batch[1], **options)
    logits = model((SOURCE, TARGET_IN), training=False)
    state = model.initial_state(SOURCE)
    for t in range(TARGET_IN.shape[1]):
        step_logits, state = model.step(TARGET_IN[:, t], state)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)
    clone = Seq2Seq.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone((SOURCE, TARGET_IN)), logits, atol=1e-6)
    restored = Seq2Seq.from_config(model.get_config())
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(model=restored).restore(path).assert_consumed()
    np.testing.assert_array_equal(restored((SOURCE, TARGET_IN)), logits)
    # A few Adam steps on a batch of the toy corpus lower the loss.
    optimizer = keras.optimizers.Adam(0.02)
    optimizer.build(model.trainable_variables)
    (source, target_in, target_out), _ = toy_batch

    @tf.function  # traced once: eager steps of the training loop take seconds each
    def train_step():
        with tf.GradientTape() as tape:
            loss, _, tokens = sequence_loss(
                model((source, target_in), training=True), target_out, 0.1
            )
            loss = loss / tokens
        grads = tape.gradient(loss, model.trainable_variables)
        assert all(g is not None for g in grads)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    losses = [float(train_step()) for _ in range(8)]
    assert losses[-1] < 0.9 * losses[0]  # about 5.7 -> 4.8 on this batch


def test_tied_and_shared_embeddings_share_weights():
    model = _variant(tie_embeddings=True, share_embeddings=True)
    assert model.encoder.embedding is model.decoder.embedding
    assert not hasattr(model.decoder, "output_layer")
    names = [w.path for w in model.weights]
    assert sum("embedding" in n for n in names) == 1


def test_shared_embeddings_survive_the_config_round_trip():
    model = _variant(tie_embeddings=True, share_embeddings=True)
    clone = Seq2Seq.from_config(model.get_config())
    assert clone.encoder.embedding is clone.decoder.embedding
    assert clone.encoder.embedding.name == model.encoder.embedding.name
    assert len(clone.weights) == len(model.weights)
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone((SOURCE, TARGET_IN)), model((SOURCE, TARGET_IN)), atol=1e-6)
    unshared = Seq2Seq.from_config(_variant(tie_embeddings=True).get_config())
    assert unshared.encoder.embedding is not unshared.decoder.embedding


# Target-side output vocabulary: the output layer scores only these ids (of 40).
KEPT = (0, 1, 2, 3, 5, 6, 9, 10, 11, 12, 13, 17, 20, 33)


def _full_and_reduced(seed: int, **fields):
    """A full model with random weights and the same model scoring only KEPT."""
    from support import model_config, randomize_weights

    from seq2seq_tf.models import build_model

    config = model_config(**{"dropout": 0.0, "embedding_dim": 8, "encoder_units": 6,
                             "decoder_units": 12, "attention_units": 10, **fields})  # fmt: skip
    full = build_model(config, 40)
    reduced = build_model(config, 40, output_ids=KEPT)
    randomize_weights(full, seed)
    for ours, theirs in zip(reduced.weights, full.weights):
        assert ours.path.split("/", 1)[1] == theirs.path.split("/", 1)[1]
        value = theirs.numpy()
        if ours.shape != theirs.shape:  # the output layer: KEPT's columns
            value = value[..., list(KEPT)]
        ours.assign(value)
    return full, reduced


def _masked_log_softmax(logits: np.ndarray) -> np.ndarray:
    """NumPy: log-softmax of full logits with every id outside KEPT at -inf."""
    masked = np.full_like(logits, -np.inf, dtype=np.float64)
    masked[..., list(KEPT)] = logits[..., list(KEPT)]
    top = masked.max(-1, keepdims=True)
    return masked - top - np.log(np.exp(masked - top).sum(-1, keepdims=True))


@pytest.mark.parametrize("tie", [False, True])
def test_target_vocab_loss_equals_the_masked_full_vocabulary_loss(tie):
    fields = {"tie_embeddings": True, "attention_units": 8} if tie else {}
    full, reduced = _full_and_reduced(3, **fields)
    target_out = tf.constant([[9, 10, 11, 3], [12, 13, 3, 0]])
    eps = 0.1
    logits, labels = reduced.teacher_forced(SOURCE, TARGET_IN, target_out)
    smoothed, nll = (x.numpy() for x in token_cross_entropy(logits, labels, eps))
    # Reference: the full model's features and output weights in NumPy, removed ids masked.
    features, _ = full.decoder.forward(TARGET_IN, full.initial_state(SOURCE))
    real = target_out.numpy().T != 0  # time-major, as teacher_forced
    feats = features.numpy()[real]
    if tie:
        kernel, bias = full.decoder.embedding.embeddings.numpy().T, full.decoder.output_bias.numpy()
    else:
        kernel, bias = (w.numpy() for w in full.decoder.output_layer.weights)
    log_p = _masked_log_softmax(feats.astype(np.float64) @ kernel + bias)
    gold = target_out.numpy().T[real]
    want_nll = -log_p[np.arange(len(gold)), gold]
    # Label smoothing spreads eps over the scored pieces (the masked ones have p = 0).
    want_smoothed = (1 - eps) * want_nll - eps * log_p[:, list(KEPT)].mean(-1)
    np.testing.assert_allclose(nll, want_nll, rtol=1e-5)
    np.testing.assert_allclose(smoothed, want_smoothed, rtol=1e-5)
    assert logits.shape[-1] == len(KEPT)
    # The full-vocabulary view (call, score): -inf off KEPT, the same values on it.
    full_view = reduced((SOURCE, TARGET_IN)).numpy()
    want = full((SOURCE, TARGET_IN)).numpy()
    np.testing.assert_allclose(full_view[..., list(KEPT)], want[..., list(KEPT)], rtol=1e-5)
    assert np.all(np.delete(full_view, list(KEPT), axis=-1) == -np.inf)


def test_target_vocab_search_equals_the_masked_full_model():
    from seq2seq_tf import search

    full, reduced = _full_and_reduced(5)
    keep = np.zeros(40, bool)
    keep[list(KEPT)] = True

    def masked_step(ids, state):
        logits, state = full.step(ids, state)
        return tf.where(keep, logits, float("-inf")), state

    source = tf.constant([[5, 6, 7, 3, 0], [4, 5, 6, 7, 3], [8, 3, 0, 0, 0]])
    budget = tf.constant([7, 7, 5])
    ids = {"start_id": vocab.BOS_ID, "end_id": vocab.EOS_ID, "pad_id": vocab.PAD_ID}
    unmasked = search.greedy_search(full.step, full.initial_state(source), budget, **ids)
    assert not np.isin(unmasked.ids.numpy(), KEPT).all()  # the mask matters here
    for run in (
        lambda step, m: search.greedy_search(step, m.initial_state(source), budget, **ids),
        lambda step, m: search.beam_search(
            step,
            m.initial_state(source),
            budget,
            3,
            0.6,
            n_best=2,
            beam_invariant=m.beam_invariant,
            **ids,
        ),  # fmt: skip
    ):
        got, want = run(reduced.step, reduced), run(masked_step, full)
        np.testing.assert_array_equal(got.ids.numpy(), want.ids.numpy())
        np.testing.assert_array_equal(got.lengths.numpy(), want.lengths.numpy())
        np.testing.assert_allclose(got.scores.numpy(), want.scores.numpy(), rtol=1e-5)
        assert np.isin(got.ids.numpy(), KEPT).all()


def test_target_piece_ids_are_the_training_targets_pieces_and_the_specials(toy_data):
    from seq2seq_tf.tasks.translation import target_piece_ids

    sp = vocab.make_tokenizer(vocab.read_model_proto(toy_data["spm_model"]))
    lines = ["a b", "b c"]
    ids = target_piece_ids(lines, sp, chunk=1)
    pieces = {int(i) for i in sp.tokenize(tf.constant(lines)).flat_values.numpy()}
    assert ids == tuple(sorted(pieces | {0, 1, 2, 3}))


def test_prepare_stores_the_target_vocab_and_old_workdirs_keep_the_full_layer(toy_data, tmp_path):
    import json

    from support import tiny_config

    from seq2seq_tf.data.text import read_lines
    from seq2seq_tf.tasks.translation import TranslationTask, target_piece_ids

    config = tiny_config(toy_data)
    config.model.target_vocab_only = True
    task = TranslationTask(config)
    task.prepare(str(tmp_path / "new"))
    sp = vocab.make_tokenizer(vocab.read_model_proto(toy_data["spm_model"]))
    want = target_piece_ids(read_lines(toy_data["train_tgt"]), sp)
    assert config.data.target_vocab == want and len(want) < task.vocab_size
    assert task.build_model().decoder.output_size == len(want)
    # A workdir whose config.json predates the option: resumed with the full output layer.
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text(json.dumps({"data": {}, "model": {}}))
    config = tiny_config(toy_data)
    config.model.target_vocab_only = True
    task = TranslationTask(config)
    task.prepare(str(old))
    assert config.data.target_vocab == ()
    assert task.build_model().decoder.output_size == task.vocab_size
