"""The one config schema, and the checks that make a bad config fail at start.

Every config file in configs/ starts from `default_config()` and changes fields;
the schema is locked, so a misspelt field is an error naming the field instead
of a silently ignored setting.

Fields (one line each; the README table repeats them):

task                              translation | language_model | captioning

data.train_src / data.train_tgt   parallel training text, plain or .gz, one sentence a line
data.dev_src / data.dev_tgt       parallel dev text (optional, "" for none)
data.spm_model                    SentencePiece model shared by source and target
data.target_lang                  target language code (Moses rules of the BLEU(lc,tok) score)
data.max_src_len / max_tgt_len    pairs longer than this (in pieces) are dropped and counted
data.batch_size                   sentences per batch (when batch_tokens is 0)
data.batch_tokens                 token budget per batch instead: each length bucket gets
                                  batch_tokens // its longest length sentences (0 = off)
data.bucket_boundaries            length bucket edges in pieces (batches hold similar lengths);
                                  () derives ten edges from the training data's length quantiles
data.shuffle_buffer               pairs held in the shuffle buffer
data.seed                         seed for shuffling and dropout; same seed, same run
data.target_vocab                 set by training with model.target_vocab_only (leave empty): the
                                  ids the output layer scores, kept in the workdir's config.json

model.embedding_dim               source and target embedding width
model.encoder_layers              bidirectional layers
model.encoder_uni_layers          unidirectional layers on top (GNMT: 1 bi + 3 uni)
model.encoder_merge               concat | sum: how the two directions combine
model.encoder_units               units per direction in each encoder layer
model.encoder_kernel              auto | loop | fused: the encoder's LSTM layers through cuDNN's
                                  fused kernel (fused: the same weights via keras.layers.LSTM;
                                  plain lstm cell, no recurrent_dropout) or our step loop; auto
                                  = fused when a GPU is visible and the cell allows it
model.decoder_layers              stacked LSTM layers in the decoder
model.decoder_units               units of each decoder layer
model.attention_units             width of the attention vector fed back (input feeding)
model.attention                   luong_general|luong_dot|luong_concat|bahdanau|bahdanau_normalized
model.attention_scaled            learned dot/general score scale, starts at 1/sqrt(decoder_units)
model.encoder_cell / decoder_cell lstm|gru|gru_reset_before|simple_rnn|layer_norm_lstm
model.attention_placement         luong (after the top layer) | bahdanau (previous state, before
                                  the stack) | gnmt (bottom layer's attention fed to all layers)
model.input_feeding               feed the previous attention vector to the first decoder layer
                                  (luong and gnmt placements)
model.encoder_residual            residual connections between encoder layers (from the 2nd up)
model.decoder_residual            residual connections between decoder layers (from the 2nd up)
model.tie_embeddings              output projection = target embedding^T (attention_units ==
                                  embedding_dim)
model.share_embeddings            one embedding for source and target (joint vocabulary)
model.bridge                      encoder final state -> decoder initial state: zeros | copy |
                                  dense (of the final states) | mean (of the memory values)
model.dropout                     dropout on embeddings and between layers
model.recurrent_dropout           variational dropout on h_{t-1} in every recurrent layer
model.word_dropout                in training, each decoder input token becomes UNK with this
                                  probability (weakens the previous-word path: the output must
                                  lean on the source, the image or the longer context)
model.target_vocab_only           the output layer scores only the pieces of the training targets
                                  (and PAD/UNK/BOS/EOS); the rest get -inf: exact, cheaper. A
                                  workdir trained without it keeps its full output layer

train.num_steps                   total optimizer steps
train.learning_rate               peak learning rate
train.lr_schedule                 constant | cosine | inverse_sqrt (lr * sqrt(warmup/step)) |
                                  plateau (constant, times plateau_factor after every
                                  plateau_patience dev evaluations without a new best BLEU);
                                  all warm up linearly
train.warmup_steps                linear warmup steps
train.plateau_patience            see plateau
train.plateau_factor              see plateau
train.eval_every                  steps between dev evaluations (dev loss, greedy BLEU/chrF,
                                  samples, attention image); 0 or no dev data = none. The best
                                  checkpoint by dev BLEU is kept in <workdir>/best/
train.early_stopping_patience     stop after this many evaluations without a new best (0 = never)
train.early_stopping_min_delta    a new best by less than this does not reset the patience
                                  (Keras's EarlyStopping min_delta; it is still kept as best)
train.max_time_s                  stop after this many seconds of training in this process (0 =
                                  no limit); the step budget still applies
train.time_decay_fraction         with max_time_s: over this last fraction of the time budget the
                                  learning rate falls linearly to zero, by the clock (0 = off)
train.clip_norm                   gradient clipping by global norm
train.max_bad_steps               non-finite steps are skipped; this many in a row stop training
train.strategy                    default | mirrored (local GPUs) | multi_worker (machines in
                                  TF_CONFIG) | tpu: the tf.distribute strategy of the training loop
train.tpu                         TPU name or grpc:// address for strategy tpu ("" = local)
train.precision                   float32 | mixed_bfloat16 (bfloat16 compute, float32 weights,
                                  softmax and loss; pays on CPUs with AVX512-BF16/AMX and TPUs)
                                  | mixed_float16 (float16 compute with dynamic loss scaling;
                                  for GPUs with tensor cores)
train.label_smoothing             label smoothing of the cross entropy
train.log_every                   steps between progress lines and TensorBoard scalars
train.checkpoint_every            steps between checkpoints
train.keep_checkpoints            rolling checkpoints kept

decode.max_length_ratio           max target pieces = ratio * source pieces + offset
decode.max_length_offset          (see above)
decode.max_length                 hard cap on target pieces

lm.* (task language_model; the model is model.embedding_dim, decoder_layers, decoder_units,
decoder_cell, decoder_residual, dropout, recurrent_dropout, tie_embeddings (needs
decoder_units == embedding_dim); data.batch_size rows, data.seed; data.spm_model "" for
characters, else a SentencePiece model)
lm.train_text                     one or more text files (comma-separated), read as one stream
lm.valid_text / lm.test_text      separate valid/test files ("" = take lm.valid_fraction /
                                  lm.test_fraction of the stream, contiguous, from its end)
lm.valid_fraction / test_fraction shares of the training stream held out (train, valid, test
                                  in that order, e.g. 0.05 / 0.05 for a 90/5/5 split)
lm.window                         tokens per window (truncated BPTT length); the state is
                                  carried from window to window and reset each pass
lm.eval_rows                      rows a held-out split is read in (state carried down each row,
                                  reset every window for the _reset figures); each row starts
                                  from zeros, so few rows is the honest figure (1 = one stream)
lm.characters                     the character vocabulary ("" = the training text's characters;
                                  the workdir keeps the one a run trained with)
lm.sample_prime                   prime of the sample written to TensorBoard at each evaluation
lm.sample_length                  its length in tokens (0 = no sample)
lm.sample_temperature             its temperature (0 = greedy)
lm.max_prime_tokens               the export keeps the last this many tokens of a prime

caption.* (task captioning; the decoder is model.embedding_dim, decoder_layers, decoder_units,
decoder_cell, attention, attention_units, attention_placement, input_feeding, bridge (mean:
Show, Attend and Tell's initial state), dropout; data.batch_size, data.seed; data.spm_model
"" for words, else a SentencePiece model)
caption.train_captions            Flickr8k-style captions.txt or COCO captions .json
caption.valid_captions / test_captions  the same for dev (best checkpoint by CIDEr-D) and test
caption.images_dir                the images ("" = beside each captions file, or its Images/)
caption.check_images              decode every image once at start (names a broken file)
caption.image_size                images are resized to this square side in-graph
caption.encoder                   cnn (trained from scratch) | features (.npy) | backbone
caption.cnn_filters               channels of the CNN's blocks (grid side = image_size / 2^blocks)
caption.cnn_convs_per_block       convolutions before each 2x2 pool
caption.cnn_kernel_sizes          their odd kernel side per block (() = 3 each); a grid cell
                                  sees 22 pixels with 3, 3, 3 and 14 with 3, 3, 1 (cells of 8)
caption.position_channels         append x, y coordinates to every grid cell
caption.features_dir              <image stem>.npy per image: [dim] or [H, W, dim] (features)
caption.feature_shape             one image's features (set from the .npy files; kept for export)
caption.backbone                  keras.applications name (encoder backbone), e.g. MobileNetV2
caption.backbone_weights          "" (random) | imagenet (downloaded: needs internet)
caption.backbone_trainable        fine-tune the backbone (False: frozen)
caption.attend                    attend over the grid (False: no attention; a dense layer of
                                  the flattened grid sets the initial state, the cs231n model)
caption.context_gate              gate the context by sigmoid(W h_{t-1}) (Show, Attend and Tell)
caption.attention_penalty         lambda of the doubly stochastic penalty
                                  lambda * sum_i (1 - sum_t alpha_ti)^2 per caption
caption.words                     the word vocabulary ("" = from the training captions; the
                                  workdir keeps the one a run trained with)
caption.min_word_count            words rarer than this in training captions are unknown
caption.max_length                caption tokens kept in training (EOS included) and searched
caption.eval_beam_width           beam of the dev evaluation (1 = greedy)
caption.eval_images               dev images captioned per evaluation (0 = all)
caption.overlays                  dev attention overlays written to TensorBoard per evaluation
"""

from __future__ import annotations

import ml_collections

from seq2seq_tf.decoders.rnn import PLACEMENTS
from seq2seq_tf.errors import UserError
from seq2seq_tf.layers.attention import ATTENTION_TYPES
from seq2seq_tf.layers.bridges import BRIDGE_TYPES
from seq2seq_tf.layers.cells import CELL_TYPES, num_states
from seq2seq_tf.training.distribute import STRATEGIES

_TASKS = ("translation", "language_model", "captioning")
_SCHEDULES = ("constant", "cosine", "inverse_sqrt", "plateau")
_PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


class ConfigError(UserError, ValueError):
    """A config field has a bad value; the message names the field."""


def default_config() -> ml_collections.ConfigDict:
    """The full schema with working defaults; locked so unknown fields fail."""
    config = ml_collections.ConfigDict()
    config.task = "translation"
    config.data = _data_group()
    config.model = _model_group()
    config.train = _train_group()
    config.decode = _decode_group()
    config.lm = _lm_group()
    config.caption = _caption_group()
    config.lock()
    return config


def _data_group() -> ml_collections.ConfigDict:
    """The data group: files, lengths, batching and the target-side vocabulary."""
    return ml_collections.ConfigDict(
        dict(
            train_src="",
            train_tgt="",
            dev_src="",
            dev_tgt="",
            spm_model="",
            target_lang="en",
            max_src_len=100,
            max_tgt_len=100,
            batch_size=64,
            batch_tokens=0,
            bucket_boundaries=(8, 12, 16, 20, 25, 30, 40, 50, 70),
            shuffle_buffer=20000,
            seed=1234,
            target_vocab=(),
        )
    )


def _model_group() -> ml_collections.ConfigDict:
    """The model group (read only by `models.build_model` and the tasks' builders)."""
    return ml_collections.ConfigDict(
        dict(
            embedding_dim=256,
            encoder_layers=2,
            encoder_units=256,
            encoder_uni_layers=0,
            encoder_merge="concat",
            encoder_kernel="auto",
            decoder_layers=2,
            decoder_units=512,
            attention_units=512,
            attention="luong_general",
            attention_scaled=True,
            encoder_cell="lstm",
            decoder_cell="lstm",
            attention_placement="luong",
            input_feeding=True,
            encoder_residual=False,
            decoder_residual=False,
            tie_embeddings=False,
            share_embeddings=False,
            bridge="copy",
            dropout=0.3,
            recurrent_dropout=0.0,
            word_dropout=0.0,
            target_vocab_only=False,
        )
    )


def _train_group() -> ml_collections.ConfigDict:
    """The train group: optimizer, schedule, precision, checkpoints, evaluation."""
    return ml_collections.ConfigDict(
        dict(
            num_steps=10000,
            learning_rate=1e-3,
            lr_schedule="constant",
            warmup_steps=200,
            plateau_patience=2,
            plateau_factor=0.5,
            eval_every=1000,
            early_stopping_patience=0,
            early_stopping_min_delta=0.0,
            max_time_s=0.0,
            time_decay_fraction=0.0,
            clip_norm=5.0,
            precision="float32",
            max_bad_steps=20,
            strategy="default",
            tpu="",
            label_smoothing=0.1,
            log_every=100,
            checkpoint_every=1000,
            keep_checkpoints=3,
        )
    )


def _decode_group() -> ml_collections.ConfigDict:
    """The decode group: output length limits of search."""
    return ml_collections.ConfigDict(
        dict(
            max_length_ratio=2.0,
            max_length_offset=10,
            max_length=200,
        )
    )


def _lm_group() -> ml_collections.ConfigDict:
    """The lm group: the language model's text, split and samples."""
    return ml_collections.ConfigDict(
        dict(
            train_text="",
            valid_text="",
            test_text="",
            valid_fraction=0.0,
            test_fraction=0.0,
            window=128,
            eval_rows=8,
            characters="",
            sample_prime="",
            sample_length=200,
            sample_temperature=0.8,
            max_prime_tokens=2000,
        )
    )


def _caption_group() -> ml_collections.ConfigDict:
    """The caption group: caption files, image encoder and the attention penalty."""
    return ml_collections.ConfigDict(
        dict(
            train_captions="",
            valid_captions="",
            test_captions="",
            images_dir="",
            check_images=True,
            image_size=64,
            encoder="cnn",
            cnn_filters=(32, 64, 128),
            cnn_convs_per_block=1,
            cnn_kernel_sizes=(),
            position_channels=True,
            features_dir="",
            feature_shape=(0,),
            backbone="MobileNetV2",
            backbone_weights="",
            backbone_trainable=False,
            attend=True,
            context_gate=True,
            attention_penalty=0.0,
            words="",
            min_word_count=1,
            max_length=24,
            eval_beam_width=1,
            eval_images=0,
            overlays=2,
        )
    )


def toy_config() -> ml_collections.ConfigDict:
    """The schema pointed at the `make demo` toy corpus (data/toy), with the demo's schedule.

    configs/quickstart.py and the presets start here and only choose the model.
    """
    config = default_config()
    config.data.train_src = "data/toy/train.src"
    config.data.train_tgt = "data/toy/train.tgt"
    config.data.dev_src = "data/toy/dev.src"
    config.data.dev_tgt = "data/toy/dev.tgt"
    config.data.spm_model = "data/toy/spm.model"
    config.data.max_src_len = 64
    config.data.max_tgt_len = 64
    config.data.batch_size = 64
    config.data.bucket_boundaries = (8, 11, 14, 17, 20, 24, 28)
    config.train.num_steps = 2500
    config.train.learning_rate = 3e-3
    config.train.lr_schedule = "cosine"
    config.train.warmup_steps = 100
    config.train.label_smoothing = 0.1
    config.train.log_every = 100
    config.train.checkpoint_every = 500
    config.train.eval_every = 500
    config.data.target_lang = "de"
    return config


def _require(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config field {field}: {message}")


def _check_keys(config: ml_collections.ConfigDict, schema: ml_collections.ConfigDict, path: str):
    for key in config.keys():
        field = f"{path}{key}"
        _require(key in schema, field, "unknown field (see seq2seq_tf/config.py for the schema)")
        if isinstance(schema[key], ml_collections.ConfigDict):
            _require(isinstance(config[key], ml_collections.ConfigDict), field, "must be a group")
            _check_keys(config[key], schema[key], field + ".")


def validate(config: ml_collections.ConfigDict, *, need_data: bool = True) -> None:
    """Raises ConfigError naming the first field that is unknown or out of range."""
    _check_keys(config, default_config(), "")
    _require(config.task in _TASKS, "task", f"must be one of {_TASKS}, got {config.task!r}")
    if config.task == "language_model":
        _validate_language_model(config, need_data)
        has_dev = bool(config.lm.valid_text) or config.lm.valid_fraction > 0
    elif config.task == "captioning":
        _validate_captioning(config, need_data)
        has_dev = bool(config.caption.valid_captions)
    else:
        _validate_data(config.data, need_data)
        _validate_model(config.model)
        has_dev = bool(config.data.dev_src)
    _validate_train(config.train, has_dev)
    _validate_decode(config.decode)


def _validate_data(d: ml_collections.ConfigDict, need_data: bool) -> None:
    if need_data:
        for name in ("train_src", "train_tgt", "spm_model"):
            _require(bool(d[name]), f"data.{name}", "must name a file")
        _require(bool(d.dev_src) == bool(d.dev_tgt), "data.dev_src", "set both dev_src and dev_tgt")
    for name in ("max_src_len", "max_tgt_len", "batch_size", "shuffle_buffer"):
        _require(int(d[name]) > 0, f"data.{name}", "must be positive")
    _require(int(d.batch_tokens) >= 0, "data.batch_tokens", "must be >= 0 (0 = batch_size)")
    ids = list(d.target_vocab)
    _require(
        all(isinstance(i, int) and i >= 0 for i in ids) and ids == sorted(set(ids)),
        "data.target_vocab",
        "must be increasing piece ids (set by training; leave it empty)",
    )
    bounds = list(d.bucket_boundaries)
    _require(
        all(int(a) < int(b) for a, b in zip(bounds, bounds[1:]))
        and all(int(b) > 0 for b in bounds),
        "data.bucket_boundaries",
        f"must be positive and strictly increasing, got {bounds}",
    )


def _validate_model(m: ml_collections.ConfigDict) -> None:
    for name in (
        "embedding_dim",
        "encoder_layers",
        "encoder_units",
        "decoder_layers",
        "decoder_units",
        "attention_units",
    ):
        _require(int(m[name]) > 0, f"model.{name}", "must be positive")
    _validate_attention_decoder(m)
    if m.attention == "luong_dot":
        _require(
            (2 if m.encoder_merge == "concat" else 1) * m.encoder_units == m.decoder_units,
            "model.attention",
            "luong_dot needs the encoder output width == decoder_units; use luong_general",
        )
    _require(
        m.bridge in BRIDGE_TYPES, "model.bridge", f"must be one of {BRIDGE_TYPES}, got {m.bridge!r}"
    )
    for name in ("encoder_cell", "decoder_cell"):
        _require(m[name] in CELL_TYPES, f"model.{name}", f"must be one of {CELL_TYPES}")
    _require(m.encoder_merge in ("concat", "sum"), "model.encoder_merge", "concat or sum")
    _require(
        m.encoder_kernel in ("auto", "loop", "fused"),
        "model.encoder_kernel",
        f"must be auto, loop or fused, got {m.encoder_kernel!r}",
    )
    if m.encoder_kernel == "fused":
        _require(
            m.encoder_cell == "lstm" and not m.recurrent_dropout,
            "model.encoder_kernel",
            "'fused' runs cuDNN's plain LSTM: needs encoder_cell 'lstm' and recurrent_dropout 0 "
            "(use 'auto' or 'loop')",
        )
    _require(int(m.encoder_uni_layers) >= 0, "model.encoder_uni_layers", "must be >= 0")
    memory_dim = (2 if m.encoder_merge == "concat" else 1) * m.encoder_units
    if m.bridge == "copy":
        _require(
            m.encoder_layers + m.encoder_uni_layers == m.decoder_layers
            and memory_dim == m.decoder_units
            and num_states(m.encoder_cell) == num_states(m.decoder_cell),
            "model.bridge",
            "'copy' needs as many encoder layers (bi + uni) as decoder layers, an encoder "
            "output width (2 * encoder_units, or encoder_units when summed) equal to "
            "decoder_units, and cells with the same states (LSTM-like or GRU-like); "
            "use 'dense' or 'zeros'",
        )
    if m.tie_embeddings:
        _require(
            m.attention_units == m.embedding_dim,
            "model.tie_embeddings",
            "needs attention_units == embedding_dim",
        )
    _require(0.0 <= m.recurrent_dropout < 1.0, "model.recurrent_dropout", "must be in [0, 1)")
    _require(0.0 <= m.word_dropout < 1.0, "model.word_dropout", "must be in [0, 1)")


def _validate_attention_decoder(m: ml_collections.ConfigDict) -> None:
    """The attention decoder's fields, which translation and captioning share."""
    _require(
        m.attention in ATTENTION_TYPES,
        "model.attention",
        f"must be one of {ATTENTION_TYPES}, got {m.attention!r}",
    )
    _require(
        m.attention_placement in PLACEMENTS,
        "model.attention_placement",
        f"must be one of {PLACEMENTS}, got {m.attention_placement!r}",
    )
    _require(
        m.attention_placement != "bahdanau" or not m.input_feeding,
        "model.input_feeding",
        f"{m.attention_placement} placement does not use input feeding; set it to False",
    )
    _require(0.0 <= m.dropout < 1.0, "model.dropout", "must be in [0, 1)")


def _validate_train(t: ml_collections.ConfigDict, has_dev: bool) -> None:
    _require(int(t.num_steps) > 0, "train.num_steps", "must be positive")
    _require(t.learning_rate > 0, "train.learning_rate", "must be positive")
    _require(
        t.lr_schedule in _SCHEDULES,
        "train.lr_schedule",
        f"must be one of {_SCHEDULES}, got {t.lr_schedule!r}",
    )
    _require(int(t.warmup_steps) >= 0, "train.warmup_steps", "must be >= 0")
    _require(int(t.plateau_patience) > 0, "train.plateau_patience", "must be positive")
    _require(0.0 < t.plateau_factor < 1.0, "train.plateau_factor", "must be in (0, 1)")
    for name in ("eval_every", "early_stopping_patience", "early_stopping_min_delta", "max_time_s"):
        _require(t[name] >= 0, f"train.{name}", "must be >= 0 (0 = off)")
    _require(0.0 <= t.time_decay_fraction <= 1.0, "train.time_decay_fraction", "must be in [0, 1]")
    if t.time_decay_fraction:
        _require(t.max_time_s > 0, "train.time_decay_fraction", "needs train.max_time_s > 0")
    if t.lr_schedule == "plateau" or t.early_stopping_patience:
        _require(
            has_dev and int(t.eval_every) > 0,
            "train.lr_schedule" if t.lr_schedule == "plateau" else "train.early_stopping_patience",
            "needs dev evaluations: set dev data (data.dev_src/dev_tgt, or lm.valid_text or "
            "lm.valid_fraction) and train.eval_every",
        )
    _require(t.clip_norm > 0, "train.clip_norm", "must be positive")
    _require(
        t.strategy in STRATEGIES,
        "train.strategy",
        f"must be one of {STRATEGIES}, got {t.strategy!r}",
    )
    _require(
        t.precision in _PRECISIONS,
        "train.precision",
        f"must be one of {_PRECISIONS}, got {t.precision!r}",
    )
    _require(0.0 <= t.label_smoothing < 1.0, "train.label_smoothing", "must be in [0, 1)")
    for name in ("log_every", "checkpoint_every", "keep_checkpoints", "max_bad_steps"):
        _require(int(t[name]) > 0, f"train.{name}", "must be positive")


def _validate_decode(dec: ml_collections.ConfigDict) -> None:
    _require(dec.max_length_ratio > 0, "decode.max_length_ratio", "must be positive")
    _require(int(dec.max_length) > 0, "decode.max_length", "must be positive")


def _validate_language_model(config: ml_collections.ConfigDict, need_data: bool) -> None:
    """The lm group and the model fields a language model reads (see the docstring)."""
    lm, m = config.lm, config.model
    if need_data:
        _require(bool(lm.train_text.strip(", ")), "lm.train_text", "must name a text file")
    _require(int(config.data.batch_size) > 0, "data.batch_size", "must be positive")
    _require(int(lm.window) > 0, "lm.window", "must be positive")
    _require(int(lm.eval_rows) > 0, "lm.eval_rows", "must be positive")
    for name in ("valid_fraction", "test_fraction"):
        _require(0.0 <= lm[name] < 1.0, f"lm.{name}", "must be in [0, 1)")
    _require(
        lm.valid_fraction + lm.test_fraction < 1.0,
        "lm.test_fraction",
        "lm.valid_fraction + lm.test_fraction must leave training text (< 1)",
    )
    for name in ("valid", "test"):
        _require(
            not (lm[f"{name}_text"] and lm[f"{name}_fraction"]),
            f"lm.{name}_fraction",
            f"give lm.{name}_text or lm.{name}_fraction, not both",
        )
    _require(
        len(set(lm.characters)) == len(lm.characters),
        "lm.characters",
        "lists each character once",
    )
    _require(
        not (lm.characters and config.data.spm_model),
        "lm.characters",
        "a character vocabulary and data.spm_model exclude each other",
    )
    _require(int(lm.sample_length) >= 0, "lm.sample_length", "must be >= 0 (0 = no sample)")
    _require(lm.sample_temperature >= 0, "lm.sample_temperature", "must be >= 0 (0 = greedy)")
    _require(int(lm.max_prime_tokens) > 0, "lm.max_prime_tokens", "must be positive")
    for name in ("embedding_dim", "decoder_layers", "decoder_units"):
        _require(int(m[name]) > 0, f"model.{name}", "must be positive")
    _require(m.decoder_cell in CELL_TYPES, "model.decoder_cell", f"must be one of {CELL_TYPES}")
    if m.tie_embeddings:
        _require(
            m.decoder_units == m.embedding_dim,
            "model.tie_embeddings",
            "a language model needs decoder_units == embedding_dim",
        )
    _require(0.0 <= m.dropout < 1.0, "model.dropout", "must be in [0, 1)")
    _require(0.0 <= m.recurrent_dropout < 1.0, "model.recurrent_dropout", "must be in [0, 1)")
    _require(0.0 <= m.word_dropout < 1.0, "model.word_dropout", "must be in [0, 1)")
    _require(
        config.train.strategy == "default",
        "train.strategy",
        "a language model trains on one device (its carried state is per row of one batch)",
    )


def _validate_captioning(config: ml_collections.ConfigDict, need_data: bool) -> None:
    """The caption group and the decoder fields a captioner reads (see the docstring)."""
    c, m = config.caption, config.model
    if need_data:
        _require(bool(c.train_captions), "caption.train_captions", "must name a captions file")
    encoders = ("cnn", "features", "backbone")
    _require(c.encoder in encoders, "caption.encoder", f"must be one of {encoders}")
    if c.encoder == "features" and need_data:
        _require(bool(c.features_dir), "caption.features_dir", "encoder features needs it")
    filters = [int(f) for f in c.cnn_filters]
    _require(bool(filters) and min(filters) > 0, "caption.cnn_filters", "positive channels")
    if c.encoder == "cnn":
        _require(
            int(c.image_size) > 0 and int(c.image_size) % 2 ** len(filters) == 0,
            "caption.image_size",
            f"must be a positive multiple of 2^{len(filters)} (one halving per CNN block)",
        )
    _require(int(c.image_size) > 0, "caption.image_size", "must be positive")
    _require(int(c.cnn_convs_per_block) > 0, "caption.cnn_convs_per_block", "must be positive")
    kernels = [int(k) for k in c.cnn_kernel_sizes]
    _require(
        not kernels or (len(kernels) == len(filters) and all(k > 0 and k % 2 for k in kernels)),
        "caption.cnn_kernel_sizes",
        f"needs one odd kernel size per CNN block ({len(filters)}), or () for 3 each",
    )
    _require(c.backbone_weights in ("", "imagenet"), "caption.backbone_weights", '"" or imagenet')
    _require(c.attention_penalty >= 0, "caption.attention_penalty", "must be >= 0")
    _require(int(c.min_word_count) > 0, "caption.min_word_count", "must be positive")
    _require(int(c.max_length) > 1, "caption.max_length", "must be > 1")
    _require(int(c.eval_beam_width) > 0, "caption.eval_beam_width", "must be positive")
    for name in ("eval_images", "overlays"):
        _require(int(c[name]) >= 0, f"caption.{name}", "must be >= 0")
    words = c.words.split()
    _require(len(set(words)) == len(words), "caption.words", "lists each word once")
    _require(int(config.data.batch_size) > 0, "data.batch_size", "must be positive")
    for name in ("embedding_dim", "decoder_layers", "decoder_units", "attention_units"):
        _require(int(m[name]) > 0, f"model.{name}", "must be positive")
    _require(m.decoder_cell in CELL_TYPES, "model.decoder_cell", f"must be one of {CELL_TYPES}")
    _validate_attention_decoder(m)
    _require(m.bridge in ("zeros", "mean"), "model.bridge", "a captioner's bridge is mean or zeros")
