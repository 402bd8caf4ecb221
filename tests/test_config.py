"""The config schema: unknown or bad fields fail at start, naming the field."""

import pathlib

import pytest
from absl import flags
from ml_collections import config_flags

from seq2seq_tf import config as config_lib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _parse(*args):
    argv = ["prog", f"--config={ROOT / 'configs' / 'quickstart.py'}", *args]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", flag_values=values, lock_config=True, sys_argv=argv)
    values(argv)
    return values.config


def test_quickstart_is_valid_and_overrides_apply():
    config = _parse(
        "--config.model.decoder_units=64",
        "--config.model.bridge=dense",
        "--config.train.num_steps=7",
    )
    config_lib.validate(config)
    assert config.model.decoder_units == 64 and config.train.num_steps == 7


def test_unknown_override_names_the_field():
    with pytest.raises(Exception, match="unitz"):
        _parse("--config.model.unitz=3")


def test_unknown_field_in_config_file_names_the_field():
    config = config_lib.default_config()
    with pytest.raises(AttributeError, match="unitz"):
        config.model.unitz = 3


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("model.bridge", "sideways", "model.bridge"),
        ("model.attention", "cosine", "model.attention"),
        ("model.dropout", 1.5, "model.dropout"),
        ("model.word_dropout", 1.0, "model.word_dropout"),
        ("train.lr_schedule", "zigzag", "train.lr_schedule"),
        ("data.bucket_boundaries", (5, 3), "data.bucket_boundaries"),
        ("model.encoder_units", 100, "model.bridge"),  # copy bridge needs matching sizes
        ("train.time_decay_fraction", 1.5, "train.time_decay_fraction"),
        ("train.time_decay_fraction", 0.3, "needs train.max_time_s"),  # no time budget set
    ],
)
def test_bad_values_name_the_field(field, value, message):
    config = _parse("--config.model.bridge=copy", "--config.model.encoder_units=128")
    group, name = field.split(".")
    config[group][name] = value
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.validate(config)


def test_missing_data_files_are_named():
    config = config_lib.default_config()
    with pytest.raises(config_lib.ConfigError, match="data.train_src"):
        config_lib.validate(config)


@pytest.mark.parametrize("preset", ["quickstart", "luong_small", "bahdanau_gru", "gnmt_4layer"])
def test_presets_validate_and_build(preset):
    from seq2seq_tf.models import build_model

    argv = ["prog", f"--config={ROOT / 'configs' / f'{preset}.py'}"]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", flag_values=values, lock_config=True, sys_argv=argv)
    values(argv)
    config_lib.validate(values.config)
    import tensorflow as tf

    model = build_model(values.config.model, vocab_size=50)
    logits = model((tf.constant([[5, 6, 3]]), tf.constant([[2, 7]])))
    assert logits.shape == (1, 2, 50)


def test_the_task_is_translation_and_another_is_refused_naming_the_field():
    config = config_lib.default_config()
    assert config.task == "translation"
    config.task = "other"
    with pytest.raises(config_lib.ConfigError, match=r"config field task: .*'other'"):
        config_lib.validate(config, need_data=False)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("lm.train_text", "", "lm.train_text: must name a text file"),
        ("lm.window", 0, "lm.window: must be positive"),
        ("lm.eval_rows", 0, "lm.eval_rows: must be positive"),
        ("lm.valid_fraction", 1.5, "lm.valid_fraction: must be in"),
        ("lm.test_fraction", 0.6, "lm.test_fraction: lm.valid_fraction \\+ lm.test_fraction"),
        ("lm.characters", "aab", "lm.characters: lists each character once"),
        ("lm.sample_temperature", -1.0, "lm.sample_temperature: must be >= 0"),
        ("model.tie_embeddings", True, "model.tie_embeddings: a language model needs"),
        ("train.strategy", "mirrored", "train.strategy: a language model trains on one device"),
    ],
)
def test_language_model_fields_are_checked_by_name(field, value, message):
    config = config_lib.default_config()
    config.task = "language_model"
    config.lm.train_text = "input.txt"
    config.lm.valid_fraction = 0.45
    config.model.decoder_layers = 3  # translation's bridge rules do not apply
    config_lib.validate(config)
    group, name = field.split(".")
    config[group][name] = value
    with pytest.raises(config_lib.ConfigError, match=message):
        config_lib.validate(config)


@pytest.mark.parametrize("name", ["char_shakespeare", "spm_shakespeare"])
def test_the_language_model_configs_are_valid(name):
    argv = ["prog", f"--config={ROOT / 'configs' / f'{name}.py'}"]
    values = flags.FlagValues()
    config_flags.DEFINE_config_file("config", flag_values=values, lock_config=True, sys_argv=argv)
    values(argv)
    config_lib.validate(values.config, need_data=False)
    assert values.config.task == "language_model" and values.config.train.clip_norm > 0
    assert bool(values.config.data.spm_model) == (name == "spm_shakespeare")
