"""serving.client: SavedModel resolution, signature choice, batching in input order."""

import numpy as np
import pytest
import tensorflow as tf

from seq2seq_tf.serving import client


def test_resolve_picks_highest_version(tmp_path):
    for version in ("1", "12", "3"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "saved_model.pb").write_bytes(b"")
    (tmp_path / "notes").mkdir()
    assert client.resolve_saved_model(str(tmp_path)).endswith("/12")
    assert client.resolve_saved_model(str(tmp_path / "3")).endswith("/3")
    with pytest.raises(FileNotFoundError, match="no SavedModel"):
        client.resolve_saved_model(str(tmp_path / "notes"))


def test_translate_lines_keeps_input_order():
    calls = []

    def fake_call(batch):
        calls.append(batch)
        return [[s.upper()] for s in batch], [[-float(len(s))] for s in batch]

    lines = ["ccc", "a", "bb", "dddd", ""]
    out, scores = client.translate_lines(fake_call, lines, batch_size=2)
    assert out == [["CCC"], ["A"], ["BB"], ["DDDD"], [""]]
    assert scores == [[-3.0], [-1.0], [-2.0], [-4.0], [0.0]]
    assert calls[0] == ["", "a"]  # batched by length


def test_make_request_picks_the_signature_for_the_flags():
    seen = []

    def signature(name):
        def call(inputs, **kwargs):
            seen.append((name, {k: v.numpy().item() for k, v in kwargs.items()}))
            batch = int(inputs.shape[0])
            n = int(kwargs["n"]) if "n" in kwargs else 1
            texts = np.array([[f"{name}:{x.decode()}"] * n for x in inputs.numpy()], object)
            return {"translations": tf.constant(texts), "scores": tf.zeros([batch, n])}

        return call

    signatures = {n: signature(n) for n in ("serving_default", "translate_nbest", "sample")}
    texts, scores = client.make_request(signatures)(["a", "b"])
    assert texts == [["serving_default:a"], ["serving_default:b"]] and scores == [[0.0], [0.0]]
    assert seen[-1] == ("serving_default", {})
    texts, _ = client.make_request(signatures, nbest=3)(["a"])
    assert texts == [["translate_nbest:a"] * 3]
    assert seen[-1] == ("translate_nbest", {"n": 3, "beam_width": 3})
    client.make_request(signatures, beam_width=5)(["a"])
    assert seen[-1] == ("translate_nbest", {"n": 1, "beam_width": 5})
    client.make_request(signatures, temperature=0.5, top_k=4, top_p=0.8, seed=7)(["a"])
    name, args = seen[-1]
    assert name == "sample" and args["top_k"] == 4 and args["seed"] == 7
    assert args["temperature"] == pytest.approx(0.5) and args["top_p"] == pytest.approx(0.8)
