"""The caption CLI: captions per image, attention figures, one-line errors."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

from support import ROOT


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "seq2seq_tf.caption", *args],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )  # fmt: skip


def test_captions_and_attention_figures(caption_export, shapes_data, tmp_path):
    images = sorted(glob.glob(f"{shapes_data}/test/Images/*.png"))[:2]
    run = _run(f"--model_dir={caption_export}", "--beam_width=2",
               f"--plot_attention={tmp_path}", *images)  # fmt: skip
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == images
    assert all(line.split("\t")[1] for line in lines)
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(p) for p in images]
    missing = _run(f"--model_dir={caption_export}", str(tmp_path / "nope.png"))
    assert missing.returncode == 2 and missing.stderr.strip().endswith("nope.png")
    text = tmp_path / "text.png"
    text.write_text("not an image")
    bad = _run(f"--model_dir={caption_export}", str(text))
    assert bad.returncode == 2 and "not a PNG, JPEG, GIF or BMP image at rows" in bad.stderr
