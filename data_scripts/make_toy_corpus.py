"""Generate a deterministic toy English -> "toy German" parallel corpus for `make demo`.

The corpus is small enough for an attention LSTM to learn to near-perfect exact match in a
few minutes of CPU training, but it is built so that copying source tokens is not enough:

* Gender and case agreement. The German determiner and adjective endings depend on the
  gender of the noun, which appears *later* in the source ("the big dog" -> "der große
  hund", "the big cat" -> "die große katze"), and on the NP's role (subject = nominative,
  object = accusative, after "mit" = dative). The decoder must look ahead in the source
  to the noun when it emits the determiner, which is what attention gives it.
* Verb-second (V2) inversion. A fronted time adverb moves the finite verb in front of the
  subject: "today the dog buys the ball ." -> "heute kauft der hund den ball ."
* Verb-final subordinate clauses. After a conjunction the verb moves to the end of the
  clause, past the object and the prepositional phrase: ", because the dog buys the ball" ->
  ", weil der hund den ball kauft".
* Number agreement. Singular subjects take stem+"t", plural subjects stem+"en".

Grammar (source is lowercase English, punctuation as separate tokens)::

    Sentence = [TimeAdverb] Clause ["," Conj Clause] "."
    Clause   = NP Verb [NP] ["with" NP]      # object only with transitive verbs
    NP       = Det Adj{0,2} Noun             # "a" singular only, "some" plural only

Simplifications (all deliberate, to keep the rules regular):

* Only regular verbs whose present tense is stem+"t" / stem+"en" are used.
* Plural nouns in the dative keep their plain plural form ("mit den hunde", not the real
  German "mit den hunden").
* The source uses "an" instead of "a" before a vowel ("an old dog"); the structure and
  the German side treat both as the indefinite article.
* "some" -> "einige" in every case; adjectives after "einige" end in -e (nom/acc) or -en (dat).

Usage::

    python data_scripts/make_toy_corpus.py --out_dir=data/toy --num_train=20000 \\
        --num_dev=1000 --num_test=1000 --seed=1234

writes ``out_dir/{train,dev,test}.{src,tgt}``. Output depends only on the flags.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from absl import flags

from seq2seq_tf import cli

# --------------------------------------------------------------------------------------
# Lexicon
# --------------------------------------------------------------------------------------

# (en_sg, en_pl, de_sg, de_pl, gender)
NOUNS: tuple[tuple[str, str, str, str, str], ...] = (
    # masculine
    ("dog", "dogs", "hund", "hunde", "m"),
    ("man", "men", "mann", "männer", "m"),
    ("friend", "friends", "freund", "freunde", "m"),
    ("teacher", "teachers", "lehrer", "lehrer", "m"),
    ("bird", "birds", "vogel", "vögel", "m"),
    ("tree", "trees", "baum", "bäume", "m"),
    ("king", "kings", "könig", "könige", "m"),
    ("table", "tables", "tisch", "tische", "m"),
    # feminine
    ("cat", "cats", "katze", "katzen", "f"),
    ("woman", "women", "frau", "frauen", "f"),
    ("flower", "flowers", "blume", "blumen", "f"),
    ("lamp", "lamps", "lampe", "lampen", "f"),
    ("door", "doors", "tür", "türen", "f"),
    ("mouse", "mice", "maus", "mäuse", "f"),
    ("city", "cities", "stadt", "städte", "f"),
    ("bottle", "bottles", "flasche", "flaschen", "f"),
    # neuter
    ("child", "children", "kind", "kinder", "n"),
    ("house", "houses", "haus", "häuser", "n"),
    ("horse", "horses", "pferd", "pferde", "n"),
    ("book", "books", "buch", "bücher", "n"),
    ("car", "cars", "auto", "autos", "n"),
    ("girl", "girls", "mädchen", "mädchen", "n"),
    ("picture", "pictures", "bild", "bilder", "n"),
    ("boat", "boats", "boot", "boote", "n"),
)
_NOUN_BY_EN = {row[0]: row for row in NOUNS}

ADJECTIVES: dict[str, str] = {
    "big": "groß",
    "small": "klein",
    "red": "rot",
    "old": "alt",
    "young": "jung",
    "happy": "froh",
    "blue": "blau",
    "green": "grün",
    "fast": "schnell",
    "new": "neu",
    "nice": "nett",
    "black": "schwarz",
}

# English base form -> (English 3rd person singular, German stem). All German verbs are
# regular: 3sg = stem + "t", plural = stem + "en" (no stems ending in -d/-t, no umlaut shift).
TRANSITIVE_VERBS: dict[str, tuple[str, str]] = {
    "buy": ("buys", "kauf"),
    "seek": ("seeks", "such"),
    "hear": ("hears", "hör"),
    "love": ("loves", "lieb"),
    "paint": ("paints", "mal"),
    "fetch": ("fetches", "hol"),
    "build": ("builds", "bau"),
    "ask": ("asks", "frag"),
    "count": ("counts", "zähl"),
    "visit": ("visits", "besuch"),
    "greet": ("greets", "grüß"),
    "need": ("needs", "brauch"),
}
INTRANSITIVE_VERBS: dict[str, tuple[str, str]] = {
    "laugh": ("laughs", "lach"),
    "play": ("plays", "spiel"),
    "dance": ("dances", "tanz"),
    "live": ("lives", "wohn"),
    "sing": ("sings", "sing"),
    "cry": ("cries", "wein"),
    "dream": ("dreams", "träum"),
}
_VERBS = {**TRANSITIVE_VERBS, **INTRANSITIVE_VERBS}

TIME_ADVERBS: dict[str, str] = {
    "today": "heute",
    "now": "jetzt",
    "often": "oft",
    "later": "später",
    "tomorrow": "morgen",
    "sometimes": "manchmal",
    "always": "immer",
}

CONJUNCTIONS: dict[str, str] = {
    "because": "weil",
    "when": "wenn",
    "while": "während",
    "although": "obwohl",
}

# Determiners by article, case and gender ("pl" for any plural noun).
_DEF_ARTICLE = {
    "nom": {"m": "der", "f": "die", "n": "das", "pl": "die"},
    "acc": {"m": "den", "f": "die", "n": "das", "pl": "die"},
    "dat": {"m": "dem", "f": "der", "n": "dem", "pl": "den"},
}
_INDEF_ARTICLE = {
    "nom": {"m": "ein", "f": "eine", "n": "ein"},
    "acc": {"m": "einen", "f": "eine", "n": "ein"},
    "dat": {"m": "einem", "f": "einer", "n": "einem"},
}
# Adjective endings by article, case and gender ("pl" for plural).
_DEF_ADJ = {
    "nom": {"m": "e", "f": "e", "n": "e", "pl": "en"},
    "acc": {"m": "en", "f": "e", "n": "e", "pl": "en"},
    "dat": {"m": "en", "f": "en", "n": "en", "pl": "en"},
}
_INDEF_ADJ = {
    "nom": {"m": "er", "f": "e", "n": "es"},
    "acc": {"m": "en", "f": "e", "n": "es"},
    "dat": {"m": "en", "f": "en", "n": "en"},
}
_SOME_ADJ = {"nom": "e", "acc": "e", "dat": "en"}

# --------------------------------------------------------------------------------------
# Structures and rendering
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NP:
    """A noun phrase: determiner ("the" / "a" / "some"), adjectives, noun (English sg key)."""

    det: str
    noun: str
    plural: bool = False
    adjs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Clause:
    """Subject, verb (English base form), optional object and optional "with" PP."""

    subject: NP
    verb: str
    obj: NP | None = None
    pp: NP | None = None


@dataclass(frozen=True)
class Sentence:
    """Main clause with an optional fronted adverb and optional conjunction + subclause."""

    main: Clause
    adverb: str | None = None
    conj: str | None = None
    sub: Clause | None = None


def _check_np(np: NP) -> None:
    if np.noun not in _NOUN_BY_EN:
        raise ValueError(f"unknown noun {np.noun!r}")
    if np.det == "a" and np.plural:
        raise ValueError('"a" needs a singular noun')
    if np.det == "some" and not np.plural:
        raise ValueError('"some" needs a plural noun')
    if np.det not in ("the", "a", "some"):
        raise ValueError(f"unknown determiner {np.det!r}")
    for adj in np.adjs:
        if adj not in ADJECTIVES:
            raise ValueError(f"unknown adjective {adj!r}")


def _np_en(np: NP) -> list[str]:
    row = _NOUN_BY_EN[np.noun]
    words = [*np.adjs, row[1] if np.plural else row[0]]
    # English "an" before a vowel ("an old dog"); German is "ein" either way.
    det = "an" if np.det == "a" and words[0][0] in "aeiou" else np.det
    return [det, *words]


def _np_de(np: NP, case: str) -> list[str]:
    _, _, de_sg, de_pl, gender = _NOUN_BY_EN[np.noun]
    key = "pl" if np.plural else gender
    if np.det == "the":
        det, ending = _DEF_ARTICLE[case][key], _DEF_ADJ[case][key]
    elif np.det == "a":
        det, ending = _INDEF_ARTICLE[case][key], _INDEF_ADJ[case][key]
    else:  # "some"
        det, ending = "einige", _SOME_ADJ[case]
    adjs = [ADJECTIVES[a] + ending for a in np.adjs]
    # Plural dative keeps the plain plural (simplification, see module docstring).
    return [det, *adjs, de_pl if np.plural else de_sg]


def _check_clause(c: Clause) -> None:
    if c.verb not in _VERBS:
        raise ValueError(f"unknown verb {c.verb!r}")
    if (c.verb in TRANSITIVE_VERBS) != (c.obj is not None):
        raise ValueError(f"verb {c.verb!r}: transitive verbs need an object, others none")
    for np in (c.subject, c.obj, c.pp):
        if np is not None:
            _check_np(np)


def _clause_parts(c: Clause) -> tuple[list[str], str, list[str], str, list[str]]:
    """(subject_de, verb_de, rest_de, verb_en, rest_en) so callers can reorder German."""
    en_3sg, stem = _VERBS[c.verb]
    verb_de = stem + ("en" if c.subject.plural else "t")
    verb_en = c.verb if c.subject.plural else en_3sg
    rest_de: list[str] = []
    rest_en: list[str] = []
    if c.obj is not None:
        rest_de += _np_de(c.obj, "acc")
        rest_en += _np_en(c.obj)
    if c.pp is not None:
        rest_de += ["mit", *_np_de(c.pp, "dat")]
        rest_en += ["with", *_np_en(c.pp)]
    return _np_de(c.subject, "nom"), verb_de, rest_de, verb_en, rest_en


def render(sentence: Sentence) -> tuple[str, str]:
    """Render an explicit structure to (source, target); tests use it for hand cases."""
    _check_clause(sentence.main)
    if (sentence.conj is None) != (sentence.sub is None):
        raise ValueError("conj and sub must be given together")
    if sentence.adverb is not None and sentence.adverb not in TIME_ADVERBS:
        raise ValueError(f"unknown adverb {sentence.adverb!r}")

    subj_de, verb_de, rest_de, verb_en, rest_en = _clause_parts(sentence.main)
    src = [*_np_en(sentence.main.subject), verb_en, *rest_en]
    if sentence.adverb is None:
        tgt = [*subj_de, verb_de, *rest_de]
    else:  # V2: adverb, finite verb, subject.
        src = [sentence.adverb, *src]
        tgt = [TIME_ADVERBS[sentence.adverb], verb_de, *subj_de, *rest_de]

    if sentence.sub is not None:
        if sentence.conj not in CONJUNCTIONS:
            raise ValueError(f"unknown conjunction {sentence.conj!r}")
        _check_clause(sentence.sub)
        s_subj_de, s_verb_de, s_rest_de, s_verb_en, s_rest_en = _clause_parts(sentence.sub)
        src += [",", sentence.conj, *_np_en(sentence.sub.subject), s_verb_en, *s_rest_en]
        # Verb-final subordinate clause.
        tgt += [",", CONJUNCTIONS[sentence.conj], *s_subj_de, *s_rest_de, s_verb_de]

    return " ".join([*src, "."]), " ".join([*tgt, "."])


# --------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------

P_SUBCLAUSE = 0.6
P_ADVERB = 0.3
P_PP = 0.3
P_TRANSITIVE = 0.65
P_PLURAL = 0.5
ADJ_COUNT_WEIGHTS = (0.5, 0.35, 0.15)  # 0, 1, 2 adjectives

_NOUN_KEYS = tuple(row[0] for row in NOUNS)
_ADJ_KEYS = tuple(ADJECTIVES)
_TRANS_KEYS = tuple(TRANSITIVE_VERBS)
_INTRANS_KEYS = tuple(INTRANSITIVE_VERBS)
_ADV_KEYS = tuple(TIME_ADVERBS)
_CONJ_KEYS = tuple(CONJUNCTIONS)


def _sample_np(rng: random.Random) -> NP:
    plural = rng.random() < P_PLURAL
    det = "the" if rng.random() < 0.6 else ("some" if plural else "a")
    n_adj = rng.choices((0, 1, 2), weights=ADJ_COUNT_WEIGHTS)[0]
    return NP(det, rng.choice(_NOUN_KEYS), plural, tuple(rng.sample(_ADJ_KEYS, n_adj)))


def _sample_clause(rng: random.Random) -> Clause:
    subject = _sample_np(rng)
    if rng.random() < P_TRANSITIVE:
        verb, obj = rng.choice(_TRANS_KEYS), _sample_np(rng)
    else:
        verb, obj = rng.choice(_INTRANS_KEYS), None
    pp = _sample_np(rng) if rng.random() < P_PP else None
    return Clause(subject, verb, obj, pp)


def sample_sentence(rng: random.Random) -> Sentence:
    """Draw one random sentence structure; all randomness comes from `rng`."""
    adverb = rng.choice(_ADV_KEYS) if rng.random() < P_ADVERB else None
    main = _sample_clause(rng)
    if rng.random() < P_SUBCLAUSE:
        return Sentence(main, adverb, rng.choice(_CONJ_KEYS), _sample_clause(rng))
    return Sentence(main, adverb)


def generate_pair(rng: random.Random) -> tuple[str, str]:
    """One random (source, target) pair; deterministic given the state of `rng`."""
    return render(sample_sentence(rng))


def make_splits(
    num_train: int, num_dev: int, num_test: int, seed: int
) -> dict[str, list[tuple[str, str]]]:
    """Build train/dev/test with unique sources that never repeat across splits.

    Test and dev are drawn first so that they stay the same for a given seed when only
    `num_train` changes (e.g. a quick run with a smaller training set).
    """
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[tuple[str, str]]] = {}
    for name, count in (("test", num_test), ("dev", num_dev), ("train", num_train)):
        pairs: list[tuple[str, str]] = []
        attempts, max_attempts = 0, 100 * count + 1000
        while len(pairs) < count:
            attempts += 1
            if attempts > max_attempts:
                raise RuntimeError(f"could not draw {count} unique {name} sentences")
            src, tgt = generate_pair(rng)
            if src not in seen:
                seen.add(src)
                pairs.append((src, tgt))
        splits[name] = pairs
    return {name: splits[name] for name in ("train", "dev", "test")}


def length_stats(pairs: list[tuple[str, str]]) -> tuple[int, float, int]:
    """(min, mean, max) source length in tokens; (0, 0.0, 0) for an empty split."""
    lengths = [len(src.split(" ")) for src, _ in pairs]
    if not lengths:
        return 0, 0.0, 0
    return min(lengths), sum(lengths) / len(lengths), max(lengths)


def write_splits(splits: dict[str, list[tuple[str, str]]], out_dir: str) -> None:
    """Write out_dir/{split}.{src,tgt}, UTF-8, one sentence per line, "\\n" line ends."""
    os.makedirs(out_dir, exist_ok=True)
    for name, pairs in splits.items():
        for side, idx in (("src", 0), ("tgt", 1)):
            path = os.path.join(out_dir, f"{name}.{side}")
            with open(path, "w", encoding="utf-8", newline="\n") as f:
                f.writelines(pair[idx] + "\n" for pair in pairs)


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------

FLAGS = flags.FLAGS


def _define_flags() -> None:
    # Defined only when run as a script, so importing the module (tests, other code)
    # does not register global absl flags.
    flags.DEFINE_string("out_dir", "data/toy", "Directory for {train,dev,test}.{src,tgt}.")
    flags.DEFINE_integer("num_train", 20000, "Number of training pairs.")
    flags.DEFINE_integer("num_dev", 1000, "Number of dev pairs.")
    flags.DEFINE_integer("num_test", 1000, "Number of test pairs.")
    flags.DEFINE_integer("seed", 1234, "Random seed; output is identical for the same flags.")


def main(argv: list[str]) -> None:
    """Generate the splits, write them and print one length summary line per split."""
    splits = make_splits(FLAGS.num_train, FLAGS.num_dev, FLAGS.num_test, FLAGS.seed)
    write_splits(splits, FLAGS.out_dir)
    for name, pairs in splits.items():
        lo, mean, hi = length_stats(pairs)
        print(
            f"{name}: {len(pairs)} pairs, source tokens min/mean/max = {lo}/{mean:.1f}/{hi}"
            f" -> {os.path.join(FLAGS.out_dir, name)}.{{src,tgt}}"
        )


if __name__ == "__main__":
    _define_flags()
    cli.run(main)
