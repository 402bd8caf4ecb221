"""Export: `python -m seq2seq_tf.export --workdir=runs/x --export_dir=exported/x`.

Writes a SavedModel at `<export_dir>/<version>/` (the layout TF Serving
expects under a model base path) holding the tokenizer, the model and the
search in one graph. Raw strings in, translations and log-probabilities out;
it runs with nothing but `tensorflow` and `tensorflow_text` imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_collections  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from seq2seq_tf import search, tokenizer  # noqa: E402
from seq2seq_tf.model import Seq2Seq, build_model  # noqa: E402
from seq2seq_tf.workdir import CHECKPOINT_DIR, SPM_FILE, load_workdir_config  # noqa: E402


class VocabularyMismatchError(ValueError):
    """The SentencePiece model and the model's embeddings disagree on vocabulary size."""


class Translator(tf.Module):
    """Tokenizer + model + greedy search, as one exportable module.

    Sources longer than `max_source_pieces` are cut to that many pieces (the
    documented rule), so no input can fail deep inside the graph. An empty
    string translates to an empty string.
    """

    def __init__(
        self,
        model: Seq2Seq,
        spm_model_path: str,
        decode: ml_collections.ConfigDict,
        max_source_pieces: int,
    ):
        super().__init__(name="translator")
        proto = tokenizer.read_model_proto(spm_model_path)
        pieces = tokenizer.vocab_size_of(spm_model_path)
        if pieces != model.vocab_size:
            raise VocabularyMismatchError(
                f"{spm_model_path} has {pieces} pieces but the model was built for "
                f"{model.vocab_size}; export with the SentencePiece model it was trained with"
            )
        self.model = model
        self.spm_model = tf.saved_model.Asset(spm_model_path)  # travels in assets/
        self.tokenizer = tokenizer.make_tokenizer(proto)
        self._ratio = float(decode.max_length_ratio)
        self._offset = int(decode.max_length_offset)
        self._cap = int(decode.max_length)
        self._max_source_pieces = int(max_source_pieces)

    def encode_sources(self, sources):
        """Raw strings `[batch]` -> ids `[batch, src_len]` (pieces + EOS, PAD after)."""
        pieces = self.tokenizer.tokenize(sources)[:, : self._max_source_pieces - 1]
        eos = tf.fill([pieces.nrows(), 1], tokenizer.EOS_ID)
        return tf.concat([pieces, eos], axis=1).to_tensor(tokenizer.PAD_ID)

    def decode_ids(self, ids, lengths):
        """Ids `[batch, steps]` with per-row lengths -> detokenized strings `[batch]`."""
        ragged = tf.RaggedTensor.from_tensor(ids, lengths=lengths)
        return self.tokenizer.detokenize(ragged)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def translate(self, inputs):
        """Greedy translation of a batch of raw strings."""
        source = self.encode_sources(inputs)
        source_lengths = tf.reduce_sum(tf.cast(source != tokenizer.PAD_ID, tf.int32), axis=1)
        max_lengths = search.max_target_lengths(
            source_lengths, self._ratio, self._offset, self._cap
        )
        state = self.model.initial_state(source, training=False)
        ids, lengths, scores = search.greedy_search(self.model.step, state, max_lengths)
        return {"translations": self.decode_ids(ids, lengths), "scores": scores}


def restore_model(workdir: str, checkpoint: str | None = None) -> tuple[Seq2Seq, str]:
    """The model of a workdir with weights from `checkpoint` (default: the latest)."""
    config, vocab_size = load_workdir_config(workdir)
    model = build_model(config.model, vocab_size)
    if checkpoint is None:
        checkpoint = tf.train.latest_checkpoint(os.path.join(workdir, CHECKPOINT_DIR))
        if checkpoint is None:
            raise FileNotFoundError(f"no checkpoint in {os.path.join(workdir, CHECKPOINT_DIR)}")
    tf.train.Checkpoint(model=model).restore(
        checkpoint
    ).expect_partial().assert_existing_objects_matched()
    return model, checkpoint


def export(
    workdir: str,
    export_dir: str,
    version: int | None = None,
    checkpoint: str | None = None,
    spm_model: str | None = None,
) -> str:
    """Exports a workdir's model; returns the versioned SavedModel path."""
    config, _ = load_workdir_config(workdir)
    model, checkpoint = restore_model(workdir, checkpoint)
    spm_model = spm_model or os.path.join(workdir, SPM_FILE)
    translator = Translator(model, spm_model, config.decode, config.data.max_src_len)
    if version is None:
        version = int(checkpoint.rsplit("-", 1)[-1])
    path = os.path.join(export_dir, str(version))
    tf.saved_model.save(
        translator,
        path,
        signatures={"serving_default": translator.translate.get_concrete_function()},
    )
    logging.info("exported %s (checkpoint %s) to %s", workdir, checkpoint, path)
    return path


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    path = export(f.workdir, f.export_dir, f.version, f.checkpoint, f.spm_model)
    print(f"SavedModel: {path}")


def run():
    """Console entry point; flags are defined here so importing this module defines none."""
    flags.DEFINE_string("workdir", None, "Training workdir to export.")
    flags.DEFINE_string("export_dir", None, "Model base path; writes <dir>/<version>.")
    flags.DEFINE_integer("version", None, "Version subdirectory (default: the step).")
    flags.DEFINE_string("checkpoint", None, "Checkpoint prefix (default: latest).")
    flags.DEFINE_string("spm_model", None, "SentencePiece model (default: the workdir's).")
    flags.mark_flags_as_required(["workdir", "export_dir"])
    app.run(main)


if __name__ == "__main__":
    run()
