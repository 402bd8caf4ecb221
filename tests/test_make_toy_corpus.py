"""Tests for data_scripts/make_toy_corpus.py (pure Python, no TensorFlow)."""

from __future__ import annotations

import random
import subprocess
import sys
import time

import pytest
from support import ROOT as _ROOT
from support import load_script

_SCRIPT = _ROOT / "data_scripts" / "make_toy_corpus.py"
tc = load_script("make_toy_corpus")
NP, Clause, Sentence = tc.NP, tc.Clause, tc.Sentence


@pytest.fixture(scope="module")
def splits():
    return tc.make_splits(20000, 1000, 1000, seed=1234)


# Hand-worked cases: (structure, expected source, expected target).
HAND_CASES = [
    # nominative / accusative masculine definite -> der ... den
    (
        Sentence(Clause(NP("the", "dog"), "buy", obj=NP("the", "table"))),
        "the dog buys the table .",
        "der hund kauft den tisch .",
    ),
    # definite adjectives: nom sg -e, acc m -en
    (
        Sentence(
            Clause(
                NP("the", "teacher", adjs=("young",)), "greet", NP("the", "king", False, ("black",))
            )
        ),
        "the young teacher greets the black king .",
        "der junge lehrer grüßt den schwarzen könig .",
    ),
    # definite feminine: nom/acc die -e, dative "der" + -en
    (
        Sentence(
            Clause(
                NP("the", "woman", adjs=("old",)),
                "paint",
                obj=NP("the", "door", adjs=("green",)),
                pp=NP("the", "lamp", adjs=("new",)),
            )
        ),
        "the old woman paints the green door with the new lamp .",
        "die alte frau malt die grüne tür mit der neuen lampe .",
    ),
    # indefinite: nom m ein -er, acc n ein -es, dat f einer -en
    (
        Sentence(
            Clause(
                NP("a", "dog", adjs=("big",)),
                "need",
                obj=NP("a", "car", adjs=("small",)),
                pp=NP("a", "bottle", adjs=("red",)),
            )
        ),
        "a big dog needs a small car with a red bottle .",
        "ein großer hund braucht ein kleines auto mit einer roten flasche .",
    ),
    # indefinite: nom n ein -es, acc f eine -e
    (
        Sentence(
            Clause(NP("a", "horse", adjs=("young",)), "count", NP("a", "flower", False, ("red",)))
        ),
        "a young horse counts a red flower .",
        "ein junges pferd zählt eine rote blume .",
    ),
    # indefinite accusative masculine -> einen -en, two adjectives
    (
        Sentence(Clause(NP("a", "girl"), "visit", NP("a", "friend", False, ("happy", "old")))),
        "a girl visits a happy old friend .",
        "ein mädchen besucht einen frohen alten freund .",
    ),
    # plural agreement, definite plural adjectives -en
    (
        Sentence(
            Clause(
                NP("the", "mouse", True, ("small",)), "hear", obj=NP("the", "bird", True, ("big",))
            )
        ),
        "the small mice hear the big birds .",
        "die kleinen mäuse hören die großen vögel .",
    ),
    # einige: nom -e, dat -en; plural dative keeps the plain plural noun
    (
        Sentence(
            Clause(
                NP("some", "child", True, ("happy",)), "play", pp=NP("some", "dog", True, ("old",))
            )
        ),
        "some happy children play with some old dogs .",
        "einige frohe kinder spielen mit einige alten hunde .",
    ),
    # definite plural dative -> den
    (
        Sentence(Clause(NP("a", "king"), "sing", pp=NP("the", "man", True))),
        "a king sings with the men .",
        "ein könig singt mit den männer .",
    ),
    # V2 inversion after a fronted adverb
    (
        Sentence(Clause(NP("the", "dog"), "buy", obj=NP("the", "table")), adverb="today"),
        "today the dog buys the table .",
        "heute kauft der hund den tisch .",
    ),
    # V2 with a plural subject and an indefinite dative masculine
    (
        Sentence(
            Clause(NP("the", "woman", True), "dance", pp=NP("a", "man", False, ("happy",))),
            adverb="often",
        ),
        "often the women dance with a happy man .",
        "oft tanzen die frauen mit einem frohen mann .",
    ),
    # verb-final subordinate clause; PP stays before the final verb
    (
        Sentence(
            Clause(NP("the", "girl"), "laugh"),
            conj="because",
            sub=Clause(
                NP("the", "man"), "fetch", NP("the", "book"), NP("a", "boat", False, ("blue",))
            ),
        ),
        "the girl laughs , because the man fetches the book with a blue boat .",
        "das mädchen lacht , weil der mann das buch mit einem blauen boot holt .",
    ),
    # V2 main clause + verb-final plural subclause
    (
        Sentence(
            Clause(NP("a", "king"), "sing"),
            adverb="later",
            conj="although",
            sub=Clause(NP("some", "cat", True), "need", NP("the", "house")),
        ),
        "later a king sings , although some cats need the house .",
        "später singt ein könig , obwohl einige katzen das haus brauchen .",
    ),
    # English "an" before a vowel; still "ein" in German (acc n -es)
    (
        Sentence(Clause(NP("a", "cat"), "build", NP("a", "house", False, ("old",)))),
        "a cat builds an old house .",
        "eine katze baut ein altes haus .",
    ),
    # shortest possible sentence
    (
        Sentence(Clause(NP("the", "dog"), "laugh")),
        "the dog laughs .",
        "der hund lacht .",
    ),
]


@pytest.mark.parametrize(("sentence", "src", "tgt"), HAND_CASES)
def test_hand_cases(sentence, src, tgt):
    assert tc.render(sentence) == (src, tgt)


@pytest.mark.parametrize(
    "sentence",
    [
        Sentence(Clause(NP("a", "dog", True), "laugh")),  # "a" with plural
        Sentence(Clause(NP("some", "dog"), "laugh")),  # "some" with singular
        Sentence(Clause(NP("the", "dog"), "buy")),  # transitive without object
        Sentence(Clause(NP("the", "dog"), "laugh", obj=NP("the", "cat"))),  # intransitive + obj
        Sentence(Clause(NP("the", "unicorn"), "laugh")),  # unknown noun
        Sentence(Clause(NP("the", "dog"), "laugh"), conj="because"),  # conj without sub
    ],
)
def test_render_rejects_invalid_structures(sentence):
    with pytest.raises(ValueError):
        tc.render(sentence)


def test_generated_rules_hold():
    """Structural properties on random sentences: V2, verb-final subclause, token parity."""
    rng = random.Random(7)
    for _ in range(2000):
        s = tc.sample_sentence(rng)
        src, tgt = tc.render(s)
        assert src.endswith(" .") and tgt.endswith(" .")
        assert src == src.lower() and tgt == tgt.lower()
        assert "  " not in src and "  " not in tgt
        # Same number of tokens on both sides (pure reordering + inflection).
        assert len(src.split()) == len(tgt.split())
        tokens = tgt.split()
        if s.adverb is not None:
            assert tokens[0] == tc.TIME_ADVERBS[s.adverb]
            stem = tc._VERBS[s.main.verb][1]
            assert tokens[1] in (stem + "t", stem + "en")
        if s.sub is not None:
            stem = tc._VERBS[s.sub.verb][1]
            assert tokens[-2] == stem + ("en" if s.sub.subject.plural else "t")
            assert tokens[tokens.index(",") + 1] == tc.CONJUNCTIONS[s.conj]


def test_generate_pair_is_deterministic():
    a = [tc.generate_pair(random.Random(3)) for _ in range(3)]
    assert a[0] == a[1] == a[2]


def test_make_splits_deterministic(splits):
    assert tc.make_splits(20000, 1000, 1000, seed=1234) == splits
    assert tc.make_splits(20000, 1000, 1000, seed=4321) != splits


def test_splits_counts_disjoint_and_unique(splits):
    assert {k: len(v) for k, v in splits.items()} == {"train": 20000, "dev": 1000, "test": 1000}
    sources = {name: [src for src, _ in pairs] for name, pairs in splits.items()}
    for name, srcs in sources.items():
        assert len(set(srcs)) == len(srcs), name
    train = set(sources["train"])
    assert not train & set(sources["dev"])
    assert not train & set(sources["test"])
    assert not set(sources["dev"]) & set(sources["test"])


def test_length_range(splits):
    lo, mean, hi = tc.length_stats(splits["train"])
    assert lo <= 5
    assert hi >= 25
    assert 8 < mean < 20


def test_generation_is_fast():
    start = time.perf_counter()
    tc.make_splits(20000, 1000, 1000, seed=99)
    assert time.perf_counter() - start < 5.0


def test_cli_writes_files(tmp_path):
    out_dir = tmp_path / "toy"
    cmd = [
        sys.executable,
        str(_SCRIPT),
        f"--out_dir={out_dir}",
        "--num_train=300",
        "--num_dev=40",
        "--num_test=50",
        "--seed=5",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=_ROOT)
    expected = {"train": 300, "dev": 40, "test": 50}
    for name, count in expected.items():
        src_lines = (out_dir / f"{name}.src").read_bytes().decode("utf-8").split("\n")
        tgt_lines = (out_dir / f"{name}.tgt").read_bytes().decode("utf-8").split("\n")
        # Trailing "\n" on the last line -> one empty string at the end.
        assert src_lines[-1] == "" and tgt_lines[-1] == ""
        assert len(src_lines) - 1 == count
        assert len(tgt_lines) - 1 == count
        assert f"{name}: {count} pairs" in result.stdout
    assert "\r" not in (out_dir / "train.src").read_text(encoding="utf-8")
    # Same flags -> identical files.
    first = (out_dir / "train.tgt").read_bytes()
    subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=_ROOT)
    assert (out_dir / "train.tgt").read_bytes() == first
    # The files match the importable API.
    pairs = tc.make_splits(300, 40, 50, seed=5)["dev"]
    assert (out_dir / "dev.src").read_text(encoding="utf-8") == "".join(s + "\n" for s, _ in pairs)
