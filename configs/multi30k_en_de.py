"""Multi30k English->German ("rnn-base"): the real-data recipe.

Prepare the data once (README, "Multi30k"):
    python data_scripts/prepare_corpus.py --raw_dir=../shared/data/multi30k \
        --splits=train,val,test_2016_flickr --src_lang=en --tgt_lang=de --out_dir=data/multi30k
    python data_scripts/train_sentencepiece.py \
        --inputs=data/multi30k/train.en,data/multi30k/train.de \
        --model_prefix=data/multi30k/spm --vocab_size=8000
then
    python -m seq2seq_tf.train --config=configs/multi30k_en_de.py --workdir=runs/m30k

Bidirectional 2-layer LSTM encoder (256 per direction), 2-layer LSTM decoder (512)
with scaled Luong general attention and input feeding, the encoder's final states
copied into the decoder, embeddings 256, joint
SentencePiece 8k, dropout 0.3, label smoothing 0.1, Adam. The dev set (val) is
decoded greedily every eval_every steps; the learning rate halves when dev BLEU
stalls and the best checkpoint by dev BLEU is what export picks. Evaluate test
sets with beam 5 (`seq2seq_tf.evaluate --beam_width=5`).
"""

from seq2seq_tf.config import default_config


def get_config():
    config = default_config()
    d = config.data
    d.train_src = "data/multi30k/train.en"
    d.train_tgt = "data/multi30k/train.de"
    d.dev_src = "data/multi30k/val.en"
    d.dev_tgt = "data/multi30k/val.de"
    d.spm_model = "data/multi30k/spm.model"
    d.target_lang = "de"
    d.max_src_len = 80
    d.max_tgt_len = 80
    d.batch_size = 64
    d.bucket_boundaries = ()  # from the training data's length quantiles
    d.shuffle_buffer = 30000  # the whole corpus

    m = config.model
    m.embedding_dim = 256
    m.encoder_layers = 2
    m.encoder_units = 256
    m.decoder_layers = 2
    m.decoder_units = 512
    m.attention_units = 512
    m.attention = "luong_general"
    m.attention_placement = "luong"
    m.input_feeding = True
    m.bridge = "copy"  # starting from the encoder states leaves the unigram plateau sooner
    m.dropout = 0.3

    t = config.train
    t.num_steps = 40000
    t.learning_rate = 2e-3
    t.lr_schedule = "plateau"
    t.warmup_steps = 200
    t.plateau_patience = 2
    t.plateau_factor = 0.5
    t.label_smoothing = 0.1
    t.eval_every = 1000
    t.early_stopping_patience = 8
    t.log_every = 100
    t.checkpoint_every = 1000
    return config
