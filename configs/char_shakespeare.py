"""Character-level language model (char-rnn) on tiny-shakespeare, for 2 CPU cores and an hour.

    python -m seq2seq_tf.train --config=configs/char_shakespeare.py --workdir=runs/char

reads ../shared/data/tinyshakespeare/input.txt.gz (1,115,394 characters; override
--config.lm.train_text for your own text) as one stream, holds out its last 10%
contiguously (5% valid, 5% test), and trains a 2-layer LSTM of 512 units on 128
contiguous rows in windows of 64 characters, the state carried from window to
window (truncated BPTT). Adam at 2e-3 with gradient clipping at 5, dropout 0.35,
no label smoothing (the loss is the honest nats per character). Training stops
after max_time_s (an hour) with the learning rate annealed to zero over the last
40% of it; evaluations every 500 steps report valid bits per character with the
state carried and reset (the split read in lm.eval_rows = 8 rows, so only 8 rows
of about 7,000 characters start from a zero state), write a sample to TensorBoard, and
keep the best checkpoint (lowest valid bits per character) for export.

Why this shape: 128 rows of 64 characters is the same 8,192 characters per step as
64 of 128, with twice the rows in each matmul: 75-second runs on this 2-core
machine gave 7,400-7,900 characters/s against 6,600-7,200 for 64 x 128 (256 x 32:
8,300, but gradients that stop 32 characters back), so more steps fit in the
hour, and each step's gradient averages over 128 places in the text instead of
64. char-rnn trains on windows of 50. 2 x 384 is 2.3x faster per step (it learns
less per pass but gets more passes). Dropout 0.5 learns slower and ended an
hour's run worse than 0.35 (valid 1.366 against 1.349, test 1.540 against 1.511
nats/char, benchmarks/README.md). Evaluations (the valid split twice and a
sample, a few seconds) run every 500 steps and at the end.
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
    lm.window = 64
    lm.sample_prime = "ROMEO:"
    lm.sample_length = 300
    lm.sample_temperature = 0.8

    config.data.batch_size = 128
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
