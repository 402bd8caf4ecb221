"""Show, Attend and Tell on the generated shapes data, for 2 CPU cores and 30 minutes.

    python data_scripts/make_shapes_captions.py --out_dir=data/shapes
    python -m seq2seq_tf.train --config=configs/shapes_captioning.py --workdir=runs/shapes

64x64 images through a CNN of three blocks (32, 64, 128 channels, one 3x3
convolution and a 2x2 pool each) give an 8x8 grid (plus x, y channels): a grid
cell is 8 pixels, so even a small object's box (about 10 pixels) holds a cell
centre, which the pointing score needs. One LSTM layer of 256 units, Bahdanau
placement and additive attention (Show, Attend and Tell's), initial state from
the mean annotation, a context gate, words as tokens, Adam 5e-3 annealed to zero
over the last 30% of the time budget, batch 32. `caption.attend=False` is the
no-attention model (a dense layer of the flattened grid sets the initial state).

Measured on the 2-core machine shared with two other jobs: the attention model
runs 1.7-2.2 steps/s at batch 64 (about 3,000-4,000 steps, 6-8 passes over the
29,400 training captions, in 30 minutes), the no-attention model 3.0 steps/s.
After 4 minutes (about 540 steps, greedy, test split): doubly stochastic penalty
0.1: attribute F1 0.515, pointing 0.285 (chance 0.056), CIDEr-D 5.44; penalty 0:
F1 0.545, pointing 0.313, CIDEr-D 5.49. The penalty as the paper writes it,
lambda * sum_i (1 - sum_t alpha_ti)^2 per caption, pulls the attention towards
uniform here, where 64 cells share about 12 words, so this config leaves it off
(`caption.attention_penalty`, e.g. 0.1, turns it on). Over a full 30-minute run
penalty 0.05 cut pointing from 0.516 to 0.314 (benchmarks/README.md).

Learning rate and batch, 200-second runs of the attention model (same session,
greedy, 300 valid / 300 test_unseen images; /tmp/captune logs): Adam 2e-3 batch
64: 524 steps, F1 0.525 / unseen 0.167, pointing 0.268, CIDEr-D 5.51; 5e-3 batch
64: 481 steps, F1 0.758 / 0.244, pointing 0.528, CIDEr-D 6.74; 1e-2 batch 64:
456 steps, F1 0.596 / 0.172, pointing 0.258; 5e-3 batch 32: 756 steps, F1 0.882
/ 0.342, pointing 0.544, CIDEr-D 6.74; 3e-3 batch 32: 861 steps, F1 0.853 /
0.369, pointing 0.489, CIDEr-D 6.82. Batch 32 ran about 3.8 steps/s there (batch
64 about 2.5); 5e-3 learns the pointing faster per step, so this config takes
5e-3 at batch 32.
"""

from seq2seq_tf.config import default_config

SHAPES = "data/shapes"


def get_config():
    config = default_config()
    config.task = "captioning"

    c = config.caption
    c.train_captions = f"{SHAPES}/train/captions.txt"
    c.valid_captions = f"{SHAPES}/valid/captions.txt"
    c.test_captions = f"{SHAPES}/test/captions.txt"
    c.image_size = 64
    c.encoder = "cnn"
    c.cnn_filters = (32, 64, 128)
    c.cnn_convs_per_block = 1
    c.position_channels = True
    c.attend = True
    c.context_gate = True
    c.attention_penalty = 0.0
    c.max_length = 24
    c.eval_beam_width = 1
    c.eval_images = 300
    c.overlays = 2

    m = config.model
    m.embedding_dim = 64
    m.decoder_layers = 1
    m.decoder_units = 256
    m.attention_units = 256
    m.attention = "bahdanau"
    m.attention_placement = "bahdanau"
    m.input_feeding = False
    m.decoder_cell = "lstm"
    m.bridge = "mean"
    m.dropout = 0.1

    config.data.batch_size = 32
    config.data.seed = 1234

    t = config.train
    t.num_steps = 100_000  # the time budget stops it
    t.max_time_s = 1800.0
    t.time_decay_fraction = 0.3
    t.learning_rate = 5e-3
    t.lr_schedule = "constant"
    t.warmup_steps = 100
    t.label_smoothing = 0.0
    t.clip_norm = 5.0
    t.log_every = 50
    t.eval_every = 500
    t.checkpoint_every = 500
    t.keep_checkpoints = 2
    return config
