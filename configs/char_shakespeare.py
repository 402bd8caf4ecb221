"""Character-level language model (char-rnn) on tiny-shakespeare, for 2 CPU cores and an hour.

    python -m seq2seq_tf.train --config=configs/char_shakespeare.py --workdir=runs/char

reads ../shared/data/tinyshakespeare/input.txt.gz (1,115,394 characters; override
--config.lm.train_text for your own text) as one stream, holds out its last 10%
contiguously (5% valid, 5% test), and trains a 2-layer LSTM of 512 units on 64
contiguous rows in windows of 128 characters, the state carried from window to
window (truncated BPTT). Adam at 2e-3 with gradient clipping at 5, dropout 0.35,
no label smoothing (the loss is the honest nats per character). Training stops
after max_time_s (an hour) with the learning rate annealed to zero over the last
40% of it; evaluations every 500 steps report valid bits per character with the
state carried and reset, write a sample to TensorBoard, and keep the best
checkpoint (lowest valid bits per character) for export.

Why this shape: measured on this 2-core machine with the other core busy, one step
of 64 x 128 characters takes about 1.8 s for 2 x 512 (about 4,000-4,500
characters/s: 2,000 or more steps, 16 or more passes, in the hour) and 0.76 s for
2 x 384 (2.3x faster; the first thing to try if 2 x 512 misses the target: it
learns less per pass but gets more passes). Evaluations (the whole valid split twice
and a sample, about 10 s) run every 500 steps and at the end.
benchmarks/lm_shakespeare.py measures the result.
"""

from seq2seq_tf.config import default_config

SHAKESPEARE = "../shared/data/tinyshakespeare/input.txt.gz"


def get_config():
    config = default_config()
    config.task = "language_model"

    lm = config.lm
    lm.train_text = SHAKESPEARE
    lm.valid_fraction = 0.05
    lm.test_fraction = 0.05
    lm.window = 128
    lm.sample_prime = "ROMEO:"
    lm.sample_length = 300
    lm.sample_temperature = 0.8

    config.data.batch_size = 64
    config.data.seed = 1234

    m = config.model
    m.embedding_dim = 64
    m.decoder_layers = 2
    m.decoder_units = 512
    m.decoder_cell = "lstm"
    m.dropout = 0.35
    m.recurrent_dropout = 0.0
    m.tie_embeddings = False

    t = config.train
    t.num_steps = 1_000_000  # the time budget decides
    t.max_time_s = 3600.0
    t.time_decay_fraction = 0.4
    t.learning_rate = 2e-3
    t.lr_schedule = "constant"
    t.warmup_steps = 100
    t.clip_norm = 5.0
    t.label_smoothing = 0.0
    t.eval_every = 500
    t.log_every = 50
    t.checkpoint_every = 250
    return config
