"""Parallel corpora: clear errors on bad pairs, the batch format, determinism, resume."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.data import parallel, text, vocab
from seq2seq_tf.data.text import DataError
from seq2seq_tf.data.vocab import BOS_ID, EOS_ID, PAD_ID


def _dataset(toy_data, src=None, tgt=None, **kwargs):
    proto = vocab.read_model_proto(toy_data["spm_model"])
    options = dict(
        batch_size=16,
        max_src_len=48,
        max_tgt_len=48,
        bucket_boundaries=(10, 20),
        shuffle_buffer=500,
        seed=3,
    )
    options.update(kwargs)
    return parallel.make_train_dataset(
        src or toy_data["train_src"],
        tgt or toy_data["train_tgt"],
        vocab.make_tokenizer(proto),
        **options,
    )


def test_mismatched_parallel_files_name_both(tmp_path):
    (tmp_path / "a.src").write_text("one\ntwo\nthree\n")
    (tmp_path / "a.tgt").write_text("eins\nzwei\n")
    with pytest.raises(DataError, match=r"a\.src has 3 lines.*a\.tgt has 2 lines"):
        parallel.check_parallel(str(tmp_path / "a.src"), str(tmp_path / "a.tgt"))


def test_missing_file_is_named(tmp_path):
    (tmp_path / "a.src").write_text("one\n")
    with pytest.raises(DataError, match="file not found: .*missing.tgt"):
        parallel.check_parallel(str(tmp_path / "a.src"), str(tmp_path / "missing.tgt"))


def test_batch_format_eos_bos_and_padding(toy_data):
    source, target_in, target_out = next(iter(_dataset(toy_data)))
    for row in range(source.shape[0]):
        src = source[row].numpy()
        src = src[src != PAD_ID]
        assert src[-1] == EOS_ID and EOS_ID not in src[:-1]
        t_in, t_out = target_in[row].numpy(), target_out[row].numpy()
        n = int(np.sum(t_out != PAD_ID))
        assert t_in[0] == BOS_ID and t_out[n - 1] == EOS_ID
        np.testing.assert_array_equal(t_in[1:n], t_out[: n - 1])  # shifted by one


def test_overlong_pairs_are_dropped_and_counted(toy_data):
    src = text.read_lines(toy_data["train_src"])
    tgt = text.read_lines(toy_data["train_tgt"])
    proto = vocab.read_model_proto(toy_data["spm_model"])
    stats = parallel.corpus_stats(src, tgt, vocab.make_tokenizer(proto), 12, 12, "toy")
    assert stats.overlong > 0 and stats.kept + stats.overlong + stats.empty == stats.pairs
    ds = _dataset(toy_data, max_src_len=12, max_tgt_len=12, repeat=False, shuffle_buffer=1)
    kept = 0
    for source, _, target_out in ds:
        assert source.shape[1] <= 12 and target_out.shape[1] <= 12
        kept += source.shape[0]
    assert kept == stats.kept


def test_empty_lines_are_dropped_and_counted(tmp_path, toy_data):
    (tmp_path / "e.src").write_text("the dog laughs .\n\nthe cat laughs .\n")
    (tmp_path / "e.tgt").write_text("der hund lacht .\ndie katze lacht .\n\n")
    src, tgt = parallel.check_parallel(str(tmp_path / "e.src"), str(tmp_path / "e.tgt"))
    proto = vocab.read_model_proto(toy_data["spm_model"])
    stats = parallel.corpus_stats(src, tgt, vocab.make_tokenizer(proto), 50, 50, "e")
    assert (stats.kept, stats.empty) == (1, 2)
    batches = list(
        _dataset(toy_data, str(tmp_path / "e.src"), str(tmp_path / "e.tgt"), repeat=False)
    )
    assert sum(b[0].shape[0] for b in batches) == 1


def test_same_seed_same_batches(toy_data):
    first = [b[0].numpy().tolist() for b in _dataset(toy_data).take(3)]
    again = [b[0].numpy().tolist() for b in _dataset(toy_data).take(3)]
    other = [b[0].numpy().tolist() for b in _dataset(toy_data, seed=4).take(3)]
    assert first == again and first != other


def test_iterator_checkpoint_resumes_at_the_same_position(toy_data, tmp_path):
    iterator = iter(_dataset(toy_data))
    for _ in range(5):
        next(iterator)
    checkpoint = tf.train.Checkpoint(iterator=iterator)
    path = checkpoint.save(str(tmp_path / "it"))
    expected = [next(iterator)[0].numpy().tolist() for _ in range(3)]
    fresh = iter(_dataset(toy_data))
    tf.train.Checkpoint(iterator=fresh).restore(path)
    assert [next(fresh)[0].numpy().tolist() for _ in range(3)] == expected


def test_token_budget_gives_each_bucket_budget_over_its_longest_length():
    assert parallel.bucket_batch_sizes((10, 20), 64, 0, 50) == [64, 64, 64]
    assert parallel.bucket_batch_sizes((10, 20), 64, 1000, 50) == [111, 52, 20]
    assert parallel.bucket_batch_sizes((10,), 64, 5, 50) == [1, 1]  # never an empty batch


def test_bucket_boundaries_from_length_quantiles():
    lengths = tuple(range(1, 101))
    edges = parallel.derive_bucket_boundaries(lengths, buckets=4)
    assert edges == (27, 52, 77)  # ~25 pairs per bucket
    assert parallel.derive_bucket_boundaries((5,) * 50) == (6,)
    assert parallel.derive_bucket_boundaries(()) == ()


def test_token_budget_batches_stay_within_budget(toy_data):
    sp = vocab.make_tokenizer(vocab.read_model_proto(toy_data["spm_model"]))
    ds = parallel.make_train_dataset(
        toy_data["train_src"], toy_data["train_tgt"], sp, batch_size=999, max_src_len=48,
        max_tgt_len=48, bucket_boundaries=(10, 16, 24), shuffle_buffer=100, seed=1,
        batch_tokens=300, repeat=False,
    )  # fmt: skip
    for source, _, target_out in ds.take(30):
        longest = max(source.shape[1], target_out.shape[1])
        assert source.shape[0] * longest <= 300
