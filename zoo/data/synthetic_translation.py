"""The embedded default translation data set: English-like sentences and their
translations into an invented language, with gold word alignments.

A small synchronous grammar draws a source-side syntax tree, and the source
sentence, the target sentence and the alignment are all read off that one
tree. Everything is plain Python, seeded and deterministic; nothing is
downloaded. ``seed`` picks the sentences, ``vocabulary_seed`` the invented
target words (the grammar of the target language is the same for every seed).

The source language
-------------------
English with ~180 nouns (people, animals, objects, food, places; singular and
plural), ~75 adjectives, ~90 verbs (transitive and intransitive, present,
past and future, negated with do-support), adverbs, prepositions, numbers,
relative clauses, adverbial clauses and coordination. Light selectional
restrictions keep it sensible ("the old farmer ate a sweet red apple in the
kitchen ."), and a sentence always ends with " .". Words are lower case and
separated by single spaces, punctuation included. Sentences run from 3
words ("dogs slept .") to 60 (the default ``max_words``; the grammar can go
further); most have 5 to 25 words, the median is about 13::

    S      -> UNIT (CC UNIT)* .               CC: and, but
    UNIT   -> CLAUSE | CLAUSE ADVCL | ADVCL , CLAUSE
    ADVCL  -> SUB CLAUSE                      SUB: because, although, while, when, ...
    CLAUSE -> SUBJ VERBS [OBJ] PP{0,2} [ADV]
    SUBJ   -> NP | NPBASE and NPBASE
    NP     -> NPBASE | NPBASE of NPBASE | NPBASE RELCL
    RELCL  -> that VERBS [NPBASE] | that NPBASE VERBS
    NPBASE -> [DET] [NUM] ADJP* NOUN          DET: the, a/an, this, these
    VERBS  -> saw | sees | see | did not see | does not see | will see | will not see ...

The grammar is unambiguous (every sentence has exactly one tree), so the
translation, which is a function of the tree, is a function of the sentence:
a perfect model can reach BLEU 100. To keep it so, prepositional phrases and
adverbs attach only to the verb of a main or adverbial clause, never inside a
relative clause, "of" phrases only to nouns, and adverbial clauses do not nest.
`generate_source_trees` gives the Penn-style bracketing of each sentence::

    (S (NP (DT the) (NN dog)) (VP (VBD saw) (NP (DT a) (NN cat))) (. .))

The target language
-------------------
Its words are pseudo-words of 2 to 4 syllables (consonant-vowel, the last
one sometimes closed by n, r, l or s; lower-case ASCII letters), distinct
from each other and from every English word of the grammar; "." and "," are
kept as they are. Glossed, with DEF a definite suffix on the noun::

    the old dog saw a small red cat in the garden and the children slept .
    PST see dog-DEF old cat red small garden-DEF in AND PST sleep child-DEF PL .

- Main clauses are verb-initial (VSO): tense or negation word, verb, adverb,
  subject, object, postpositional phrases, then a trailing adverbial clause.
  A fronted adverbial clause stays in front: "when B , A" -> "B' WHEN , A'".
- Adverbial and relative clauses are verb-final (SOV): subject, object,
  postpositional phrases, adverb, verb, tense or negation word. An adverbial
  clause ends with its conjunction ("because the cat slept" -> "cat-DEF sleep
  PST BECAUSE"); a relative clause follows its noun and starts with a
  relative word, one for subject relatives ("the dog that saw the cat" ->
  "dog-DEF RELS cat-DEF see PST") and another for object relatives ("the cat
  that the dog saw" -> "cat-DEF RELO dog-DEF see PST").
- Noun phrases: noun, adjectives in mirror order, number or plural particle,
  demonstrative: "these two very big dogs" -> "dog big VERY two DEM". "the"
  becomes the definite suffix, "a"/"an" and bare nouns nothing. "the door of
  the house" -> "house-DEF GEN door-DEF"; "X and Y" (subjects) -> "X' NPAND Y'"
  with a word that differs from the clause-joining "and".
- Prepositions become postpositions: "in the garden" -> "garden-DEF IN".
- Verbs: present "sees"/"see" -> one word; past "saw" -> PST + verb; "will
  see" -> FUT + verb; "does not see" -> NEG + verb, "did not see" -> NEGPST +
  verb, "will not see" -> NEGFUT + verb (one word for tense and negation).
  The target has no agreement: "see", "sees" and "saw" share one verb word.

Alignment conventions
---------------------
``alignment`` holds ``(source_index, target_index)`` pairs over the
whitespace-split words, sorted. Every target word and every source word has
at least one link:

- a content word links to its translation ("garden" - GARDEN, "in" - IN);
- "the" and "a"/"an" link to the noun they attach to (many-to-one: "the dog"
  -> "dog-DEF" is linked to both words);
- the plural particle links to the plural noun ("dogs" -> "dog PL", one-to-
  many); it is left out after a number, which already says plural;
- a past verb links to both the verb and the PST word ("saw" -> "PST see");
  "did"/"does"/"do"/"will" and "not" link to the one tense/negation word;
- "that" links to the relative word, "of" to GEN, "very" to VERY,
  conjunctions and punctuation to their counterparts.

Example:
    ```python
    from zoo.data.synthetic_translation import generate_translation_pairs, split_examples

    examples = generate_translation_pairs(25_000, seed=0)
    train, validation, test = split_examples(examples, 500, 1000)
    examples[0].source, examples[0].target, examples[0].alignment
    ```
"""

from __future__ import annotations

import dataclasses
import functools
import random
from collections.abc import Sequence
from typing import Any

__all__ = [
    "TranslationExample",
    "generate_source_trees",
    "generate_translation_pairs",
    "split_examples",
    "synthetic_lexicon",
]


@dataclasses.dataclass(frozen=True)
class TranslationExample:
    """One sentence pair of the synthetic language and its gold alignment.

    Attributes:
        source: the English-like sentence, words joined by single spaces.
        target: its translation, words joined by single spaces.
        alignment: sorted ``(source_word_index, target_word_index)`` links,
            0-based over the whitespace-split words.
    """

    source: str
    target: str
    alignment: tuple[tuple[int, int], ...]


# --- the source lexicon -------------------------------------------------------------------------
# Noun classes: h human, a animal, o object, f food, p place. Every surface form
# belongs to one word of one part of speech (checked below), so a word alone
# says what it translates to.

# class singular plural ("-": regular) of-complement classes ("-": none)
_NOUN_TABLE = """
h man men - | h woman women - | h boy - - | h girl - - | h child children - | h baby - -
h teacher - h | h student - - | h doctor - - | h nurse - - | h farmer - - | h baker - -
h king - p | h queen - p | h prince - - | h princess - - | h soldier - - | h sailor - -
h driver - - | h singer - - | h dancer - - | h painter - - | h writer - - | h chef - -
h waiter - - | h pilot - - | h captain - o | h judge - - | h thief thieves - | h guard - p
h hunter - - | h fisherman fishermen - | h mother - h | h father - h | h sister - h
h brother - h | h uncle - h | h aunt - h | h friend - ha | h neighbor - - | h stranger - -
h owner - aop | h lawyer - - | h poet - -
a dog - - | a cat - - | a bird - - | a horse - - | a cow - - | a pig - - | a goat - -
a lamb - - | a rabbit - - | a mouse mice - | a fox - - | a wolf wolves - | a bear - -
a lion - - | a tiger - - | a monkey - - | a elephant - - | a duck - - | a goose geese -
a chicken - - | a frog - - | a snake - - | a owl - - | a bee - - | a spider - -
a donkey - - | a camel - - | a zebra - - | a kitten - - | a puppy - - | a parrot - -
a squirrel - - | a turtle - - | a whale - - | a dolphin - -
o book - - | o box - - | o ball - - | o cup - - | o key - - | o bag - - | o hat - -
o shoe - - | o chair - - | o table - - | o lamp - - | o clock - - | o basket - -
o bottle - - | o bucket - - | o blanket - - | o coin - - | o letter - - | o map - p
o picture - hap | o toy - - | o umbrella - - | o door - p | o window - p | o roof - p
o candle - - | o mirror - - | o brush - - | o knife knives - | o spoon - - | o plate - -
o ladder - - | o kite - - | o drum - - | o guitar - - | o violin - - | o bicycle - -
o car - - | o boat - - | o ship - - | o wagon - - | o ring - - | o scarf scarves -
o coat - - | o glove - - | o pencil - - | o sword - - | o feather - - | o photo - hap
f apple - - | f banana - - | f cake - - | f cookie - - | f egg - - | f orange - -
f pear - - | f plum - - | f pie - - | f sandwich - - | f carrot - - | f potato potatoes -
f tomato tomatoes - | f cherry - - | f lemon - - | f melon - - | f onion - - | f peach - -
f sausage - - | f muffin - -
p garden - - | p house - - | p park - - | p river - - | p forest - - | p village - -
p city - - | p school - - | p market - - | p kitchen - - | p church - - | p castle - -
p bridge - - | p street - - | p field - - | p farm - - | p lake - - | p hill - -
p beach - - | p library - - | p station - - | p shop - - | p palace - - | p cave - -
p island - - | p mountain - - | p tower - - | p harbor - - | p valley - -
"""

# word rank classes gradable(y/n); rank orders adjectives as English does
# (opinion 0, quality 1, size 2, age 3, colour 4, material 5).
_ADJECTIVE_TABLE = """
beautiful 0 haofp y | ugly 0 haofp y | lovely 0 haofp y | wonderful 0 haofp n
strange 0 haofp y | pretty 0 haop y | famous 0 hap y
happy 1 ha y | sad 1 ha y | angry 1 ha y | hungry 1 ha y | tired 1 ha y | brave 1 ha y
clever 1 ha y | lazy 1 ha y | kind 1 h y | friendly 1 ha y | shy 1 ha y | proud 1 ha y
sleepy 1 ha y | lonely 1 ha y | busy 1 hp y | gentle 1 ha y | calm 1 hap y | curious 1 ha y
wild 1 a y | quiet 1 hap y | noisy 1 hap y | dirty 1 haop y | wet 1 haofp y | dry 1 aofp y
warm 1 ofp y | cold 1 haofp y | broken 1 o n | empty 1 op n | heavy 1 o y | soft 1 aof y
sweet 1 f y | fresh 1 f y | ripe 1 f y | expensive 1 of y | cheap 1 of y | shiny 1 o y
rusty 1 o y | rich 1 h y | poor 1 h y | nervous 1 ha y | silly 1 ha y | fat 1 ha y
big 2 haofp y | small 2 haofp y | little 2 haofp y | large 2 aofp y | tiny 2 haofp y
huge 2 aop y | tall 2 hap y | short 2 hao y
old 3 haop y | young 3 ha y | new 3 op y | ancient 3 op n
red 4 ofp n | blue 4 op n | green 4 ofp n | yellow 4 ofp n | black 4 aop n
white 4 aop n | brown 4 aofp n | gray 4 aop n | pink 4 of n | purple 4 of n
golden 4 ao n | wooden 5 o n | silver 5 o n | woolen 5 o n
"""

# base past subject-classes object-classes ("-": intransitive)
_VERB_TABLE = """
see saw ha haofp | watch watched ha hao | find found ha haof | like liked ha haofp
love loved ha haofp | hate hated ha haof | want wanted ha of | take took h oaf
carry carried ha of | hold held h ofa | buy bought h ofa | sell sold h ofa
bring brought ha of | push pushed ha oh | pull pulled ha o | follow followed ha ha
chase chased ha hao | catch caught ha ao | call called h ha | help helped ha h
meet met h h | visit visited h hp | clean cleaned h op | wash washed h oaf
paint painted h op | draw drew h haop | build built h o | break broke ha o
fix fixed h o | open opened h o | close closed h o | drop dropped ha of
throw threw h of | kick kicked ha o | eat ate ha f | cook cooked h f
hide hid ha of | move moved h o | touch touched ha haof | smell smelled ha fo
hear heard ha ha | need needed ha ofh | keep kept h oaf | lose lost h o
steal stole ha of | feed fed h ah | teach taught h ha | greet greeted ha h
kiss kissed h ha | bite bit a haof | lift lifted h oa | choose chose h ofa
forget forgot h hop | remember remembered ha haop | admire admired h haop
grab grabbed ha of | climb climbed ha p | leave left ha op | pick picked h f
sleep slept ha - | run ran ha - | walk walked ha - | sing sang ha - | dance danced ha -
laugh laughed h - | cry cried ha - | smile smiled h - | jump jumped ha - | swim swam ha -
sit sat ha - | wait waited ha - | fall fell haof - | shout shouted h - | work worked h -
play played ha - | rest rested ha - | arrive arrived ha - | hurry hurried ha -
dream dreamed ha - | whistle whistled h - | sneeze sneezed ha - | yawn yawned ha -
shiver shivered ha - | wander wandered ha - | stand stood ha - | listen listened ha -
fly flew a - | crawl crawled ha - | wake woke ha - | sink sank o - | roll rolled of -
shine shone o - | disappear disappeared haof -
"""

# word tenses (p past, n present, f future, * any)
_ADVERB_TABLE = """
quickly * | slowly * | quietly * | loudly * | happily * | sadly * | carefully *
suddenly * | gently * | proudly * | calmly * | angrily * | bravely * | politely *
patiently * | eagerly * | nervously * | secretly * | again * | alone *
early * | there * | here * | yesterday p | today pnf | tomorrow f | soon f
later pf | now n | often n
"""

# word object-classes; the motion ones (into, toward, ...) go with motion verbs only
_PREPOSITION_TABLE = """
in po | on po | under o | near haop | behind haop | beside haop | with hao | at p
without hao | above o
"""
_MOTION_PREPOSITION_TABLE = """
across p | through p | from ph | into p | toward hap | around po | along p
"""
_MOTION_VERBS = frozenset(
    "run walk wander swim fly crawl hurry jump dance fall roll carry push pull throw follow "
    "chase bring move drop kick climb".split()
)

_NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven")
_NUMBERS += ("twelve", "twenty")
_SUBORDINATORS = ("because", "although", "while", "when", "after", "before", "until")
_TEMPORAL = frozenset({"while", "when", "after", "before", "until"})
_COORDINATORS = ("and", "but")
# Function words of the source, each with one role ("and" is the exception:
# it joins noun phrases and clauses, and the tree tells which).
_FUNCTION_WORDS = ("the", "a", "an", "this", "these", "that", "of", "very", "not")
_FUNCTION_WORDS += ("did", "does", "do", "will", ".", ",")


def _rows(table: str) -> list[list[str]]:
    return [row.split() for line in table.strip().splitlines() for row in line.split("|")]


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh", "z")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _third_person(verb: str) -> str:
    if verb.endswith(("s", "x", "ch", "sh", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


# (singular, plural, class, of-complement classes)
_NOUNS = tuple(
    (sg, _plural(sg) if pl == "-" else pl, cls, "" if of == "-" else of)
    for cls, sg, pl, of in _rows(_NOUN_TABLE)
)
# (word, rank, classes, gradable)
_ADJECTIVES = tuple((w, int(rank), cls, g == "y") for w, rank, cls, g in _rows(_ADJECTIVE_TABLE))
# (base, third person, past, subject classes, object classes or "")
_VERBS = tuple(
    (base, _third_person(base), past, subj, "" if obj == "-" else obj)
    for base, past, subj, obj in _rows(_VERB_TABLE)
)
_ADVERBS = tuple((w, "pnf" if t == "*" else t) for w, t in _rows(_ADVERB_TABLE))
_STATIC_PREPOSITIONS = tuple((w, cls) for w, cls in _rows(_PREPOSITION_TABLE))
_PREPOSITIONS = _STATIC_PREPOSITIONS + tuple(
    (w, cls) for w, cls in _rows(_MOTION_PREPOSITION_TABLE)
)


def _source_forms() -> dict[str, tuple[str, int]]:
    """Every source word -> (part of speech, index); fails on a word with two roles."""
    forms: dict[str, tuple[str, int]] = {}

    def add(word: str, pos: str, index: int) -> None:
        if word in forms and forms[word][:2] != (pos, index):
            raise AssertionError(f"source word {word!r} has two roles: {forms[word]}, {pos}")
        forms[word] = (pos, index)

    for i, (sg, pl, _, _) in enumerate(_NOUNS):
        add(sg, "noun", i)
        add(pl, "noun", i)
    for i, (word, *_) in enumerate(_ADJECTIVES):
        add(word, "adjective", i)
    for i, (base, third, past, *_) in enumerate(_VERBS):
        for form in (base, third, past):
            add(form, "verb", i)
    for kind, words in (
        ("adverb", [w for w, _ in _ADVERBS]),
        ("preposition", [w for w, _ in _PREPOSITIONS]),
        ("number", _NUMBERS),
        ("subordinator", _SUBORDINATORS),
        ("coordinator", _COORDINATORS),
        ("function", _FUNCTION_WORDS),
    ):
        for i, word in enumerate(words):
            add(word, kind, i)
    return forms


_SOURCE_FORMS = _source_forms()

# --- tables the generator draws from ------------------------------------------------------------
_PAST, _PRESENT, _FUTURE = "p", "n", "f"


# Nouns by the classes a verb, preposition or "of" phrase takes ("ha": humans and animals).
_NOUN_CHOICES = {
    classes: tuple(i for i, noun in enumerate(_NOUNS) if noun[2] in classes)
    for classes in {v[3] for v in _VERBS}
    | {v[4] for v in _VERBS if v[4]}
    | {p[1] for p in _PREPOSITIONS}
    | {n[3] for n in _NOUNS if n[3]}
}
_VERB_PREPOSITIONS = tuple(
    _PREPOSITIONS if v[0] in _MOTION_VERBS else _STATIC_PREPOSITIONS for v in _VERBS
)
_TRANSITIVE = tuple(i for i, v in enumerate(_VERBS) if v[4])
_INTRANSITIVE = tuple(i for i, v in enumerate(_VERBS) if not v[4])
# Relative clauses on a noun of class c: verbs that take c as subject / object.
_SUBJECT_VERBS = {c: tuple(i for i, v in enumerate(_VERBS) if c in v[3]) for c in "haofp"}
_OBJECT_VERBS = {c: tuple(i for i in _TRANSITIVE if c in _VERBS[i][4]) for c in "haofp"}
# Adjectives a noun class takes, grouped by rank: at most one per rank in a phrase.
_ADJECTIVES_BY_RANK = {
    c: tuple(
        group
        for group in (
            tuple((a[0], a[3]) for a in _ADJECTIVES if a[1] == rank and c in a[2])
            for rank in range(6)
        )
        if group
    )
    for c in "haofp"
}
# What drawing a noun phrase needs of a noun: (singular, plural, adjective groups).
_NOUN_DRAWS = tuple((sg, pl, _ADJECTIVES_BY_RANK[cls]) for sg, pl, cls, _ in _NOUNS)
_ADVERBS_BY_TENSE = {t: tuple(w for w, tenses in _ADVERBS if t in tenses) for t in "pnf"}


# --- the target lexicon -------------------------------------------------------------------------
_ONSETS = "bdfghklmnprstvz"
_VOWELS = "aeiou"
_CODAS = "nrls"


@dataclasses.dataclass(frozen=True)
class _TargetLexicon:
    words: dict[str, str]  # "kind:lemma" or a gloss -> target word: "verb:see", "PL"
    noun: tuple[str, ...]
    noun_definite: tuple[str, ...]


_FUNCTION_GLOSSES = (
    "DEF",  # the definite suffix (one syllable, not a word on its own)
    "PL",
    "DEM",
    "GEN",
    "RELS",
    "RELO",
    "NPAND",
    "AND",
    "BUT",
    "PST",
    "FUT",
    "NEG",
    "NEGPST",
    "NEGFUT",
    "VERY",
)


@functools.lru_cache(maxsize=16)
def _target_lexicon(vocabulary_seed: int) -> _TargetLexicon:
    rng = random.Random(vocabulary_seed)
    taken = set(_SOURCE_FORMS)
    syllables = [o + v for o in _ONSETS for v in _VOWELS]

    def pseudo_word(min_syllables: int, max_syllables: int) -> str:
        n = rng.randint(min_syllables, max_syllables)
        word = "".join(rng.choice(syllables) for _ in range(n))
        return word + rng.choice(_CODAS) if rng.random() < 0.25 else word

    def fresh(min_syllables: int, max_syllables: int, suffix: str | None = None) -> str:
        while True:
            word = pseudo_word(min_syllables, max_syllables)
            if word in taken or (suffix is not None and word + suffix in taken):
                continue
            taken.add(word)
            if suffix is not None:
                taken.add(word + suffix)
            return word

    definite = rng.choice(syllables)
    taken.add(definite)
    words = {"DEF": definite}
    for gloss in _FUNCTION_GLOSSES[1:]:
        words[gloss] = fresh(2, 2)
    # Noun stems of 2-3 syllables, so that stem + definite suffix has 3-4.
    noun = tuple(fresh(2, 3, suffix=definite) for _ in _NOUNS)
    for kind, lemmas, syllable_range in (
        ("adjective", [a[0] for a in _ADJECTIVES], (2, 3)),
        ("verb", [v[0] for v in _VERBS], (2, 3)),
        ("adverb", [a[0] for a in _ADVERBS], (2, 4)),
        ("preposition", [p[0] for p in _PREPOSITIONS], (2, 2)),
        ("number", _NUMBERS, (2, 3)),
        ("subordinator", _SUBORDINATORS, (2, 3)),
    ):
        for lemma in lemmas:
            words[f"{kind}:{lemma}"] = fresh(*syllable_range)
    return _TargetLexicon(words, noun, tuple(stem + definite for stem in noun))


def synthetic_lexicon(vocabulary_seed: int = 0) -> dict[str, Any]:
    """The word lists of both languages, for tests and documentation.

    Args:
        vocabulary_seed: the seed of the invented target words.

    Returns:
        A new dict with ``nouns`` (singular, plural, target stem, target
        definite form), ``adjectives``, ``adverbs``, ``prepositions`` (the
        target word is a postposition), ``numbers``, ``subordinators``
        (English, target), ``verbs`` (base, third person, past, target),
        ``function_words`` (gloss -> target word, e.g. ``"PST"``; ``"DEF"`` is
        the definite suffix), and ``source_words`` / ``target_words``: every
        word type each side can produce, sorted, punctuation included.
    """
    lex = _target_lexicon(vocabulary_seed)
    words = lex.words

    def pairs(kind: str, lemmas: Sequence[str]) -> list[tuple[str, str]]:
        return [(lemma, words[f"{kind}:{lemma}"]) for lemma in lemmas]

    function_words = {gloss: words[gloss] for gloss in _FUNCTION_GLOSSES}
    target_words = set(lex.noun) | set(lex.noun_definite) | {".", ","}
    target_words |= {w for key, w in words.items() if key != "DEF"}
    return {
        "nouns": [
            (sg, pl, lex.noun[i], lex.noun_definite[i]) for i, (sg, pl, *_) in enumerate(_NOUNS)
        ],
        "adjectives": pairs("adjective", [a[0] for a in _ADJECTIVES]),
        "verbs": [(b, t, p, words[f"verb:{b}"]) for b, t, p, *_ in _VERBS],
        "adverbs": pairs("adverb", [a[0] for a in _ADVERBS]),
        "prepositions": pairs("preposition", [p[0] for p in _PREPOSITIONS]),
        "numbers": pairs("number", _NUMBERS),
        "subordinators": pairs("subordinator", _SUBORDINATORS),
        "function_words": function_words,
        "source_words": sorted(_SOURCE_FORMS),
        "target_words": sorted(target_words),
    }


# --- drawing a source tree ----------------------------------------------------------------------
# A tree node is (label, [children]); a leaf is (tag, word, source_index). Leaves
# are made in sentence order, so the index of a leaf is its position.

# Probabilities that shape the sentences (and so the length distribution).
_UNITS_CDF = (0.68, 0.92, 0.985, 1.0)  # 1, 2, 3, 4 coordinated units
_P_AND = 0.7  # "and" rather than "but" between units
_P_FRONT_CLAUSE = 0.05  # "when the cat slept , the dog ..."
_P_TRAILING_CLAUSE = 0.14  # "... because the cat slept"
_P_TRANSITIVE = 0.65
_P_SUBJECT_AND = 0.06
_P_PPS = ((0.62, 0.93), (0.78, 0.97))  # main / embedded: CDF of 0, 1 (else 2) phrases
_P_ADVERB = (0.2, 0.1)  # main / embedded
_P_RELATIVE = 0.1
_P_RELATIVE_IN_PP = 0.06
_P_OF = 0.3  # for the nouns that take an "of" phrase
_P_SUBJECT_RELATIVE = 0.65
_ADJECTIVES_CDF = (0.6, 0.88, 0.97, 1.0)  # 0, 1, 2, 3 adjectives
_P_VERY = 0.12
_P_NEGATION = 0.12
_P_PLURAL = 0.3
_P_NUMBER = 0.2
_TENSES_CDF = (0.5, 0.8)  # past, present, else future


class _TreeBuilder:
    """Draws source trees; the `words` of the tree being built are its leaves in order."""

    def __init__(self, rng: random.Random) -> None:
        self.random = rng.random
        self.words: list[str] = []

    def pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.random() * len(options))]

    def leaf(self, tag: str, word: str) -> tuple[str, str, int]:
        self.words.append(word)
        return (tag, word, len(self.words) - 1)

    def sentence(self) -> tuple:
        self.words = []
        r = self.random
        x = r()
        tense = _PAST if x < _TENSES_CDF[0] else _PRESENT if x < _TENSES_CDF[1] else _FUTURE
        x = r()
        n_units = 1
        while x >= _UNITS_CDF[n_units - 1]:
            n_units += 1
        children: list = []
        for k in range(n_units):
            if k:
                children.append(self.leaf("CC", "and" if r() < _P_AND else "but"))
            children.append(self.unit(tense))
        period = self.leaf(".", ".")
        if n_units == 1:
            return ("S", children[0][1] + [period])
        return ("S", children + [period])

    def unit(self, tense: str) -> tuple:
        x = self.random()
        if x < _P_FRONT_CLAUSE:
            sbar = self.adverbial_clause(tense)
            comma = self.leaf(",", ",")
            return ("S", [sbar, comma, *self.clause(tense, main=True)])
        return (
            "S",
            self.clause(tense, main=True, trailing=x < _P_FRONT_CLAUSE + _P_TRAILING_CLAUSE),
        )

    def adverbial_clause(self, tense: str) -> tuple:
        word = self.pick(_SUBORDINATORS)
        head = ("WHADVP", [self.leaf("WRB", word)]) if word == "when" else self.leaf("IN", word)
        # English puts the present, not "will", in a temporal clause of a future sentence.
        if tense == _FUTURE and word in _TEMPORAL:
            tense = _PRESENT
        return ("SBAR", [head, ("S", self.clause(tense, main=False))])

    def clause(self, tense: str, main: bool, trailing: bool = False) -> list:
        """SUBJ VP: returns the children of the clause's S node."""
        r = self.random
        v = self.pick(_TRANSITIVE if r() < _P_TRANSITIVE else _INTRANSITIVE)
        verb = _VERBS[v]
        subject_nouns = _NOUN_CHOICES[verb[3]]
        if r() < _P_SUBJECT_AND:
            first = self.noun_phrase(subject_nouns)[0]
            conj = self.leaf("CC", "and")
            subject = ("NP", [first, conj, self.noun_phrase(subject_nouns)[0]])
            plural = True
        else:
            subject, plural = self.full_noun_phrase(subject_nouns, tense, _P_RELATIVE)
        vp, rest = self.verb_group(verb, tense, plural)
        if verb[4]:
            rest.append(self.full_noun_phrase(_NOUN_CHOICES[verb[4]], tense, _P_RELATIVE)[0])
        x = r()
        cdf = _P_PPS[0 if main else 1]
        for _ in range(0 if x < cdf[0] else 1 if x < cdf[1] else 2):
            word, classes = self.pick(_VERB_PREPOSITIONS[v])
            prep = self.leaf("IN", word)
            np = self.full_noun_phrase(_NOUN_CHOICES[classes], tense, _P_RELATIVE_IN_PP)[0]
            rest.append(("PP", [prep, np]))
        if r() < _P_ADVERB[0 if main else 1]:
            rest.append(("ADVP", [self.leaf("RB", self.pick(_ADVERBS_BY_TENSE[tense]))]))
        if trailing:
            rest.append(self.adverbial_clause(tense))
        return [subject, vp]

    def verb_group(self, verb: tuple, tense: str, plural: bool) -> tuple[tuple, list]:
        """The VP of "saw", "sees", "did not see", "will see" ...; returns it and the list
        its complements go into (the inner VP's children when there is an auxiliary)."""
        words = self.words
        i = len(words)
        negated = self.random() < _P_NEGATION
        if negated or tense == _FUTURE:
            if tense == _FUTURE:
                aux = ("MD", "will", i)
            elif tense == _PAST:
                aux = ("VBD", "did", i)
            else:
                aux = ("VBP", "do", i) if plural else ("VBZ", "does", i)
            words.append(aux[1])
            children = [aux]
            if negated:
                children.append(("RB", "not", i + 1))
                words.append("not")
            inner = [("VB", verb[0], len(words))]
            words.append(verb[0])
            children.append(("VP", inner))
            return ("VP", children), inner
        if tense == _PAST:
            head = ("VBD", verb[2], i)
        else:
            head = ("VBP", verb[0], i) if plural else ("VBZ", verb[1], i)
        words.append(head[1])
        children = [head]
        return ("VP", children), children

    def noun_phrase(self, nouns: Sequence[int]) -> tuple[tuple, int, bool]:
        """[DET] [NUM] ADJP* NOUN; returns the node, the noun and whether it is plural."""
        # The hottest code of the generator, hence the inlined leaves.
        r = self.random
        words = self.words
        n = nouns[int(r() * len(nouns))]
        singular, plural_form, groups = _NOUN_DRAWS[n]
        x = r()
        plural = x < _P_PLURAL
        number = None
        if plural:
            noun, tag = plural_form, "NNS"
            x /= _P_PLURAL  # uniform again
            det = "the" if x < 0.5 else None if x < 0.92 else "these"
            if r() < _P_NUMBER:
                number = _NUMBERS[int(r() * len(_NUMBERS))]
        else:
            noun, tag = singular, "NN"
            x = (x - _P_PLURAL) / (1.0 - _P_PLURAL)  # uniform again
            det = "the" if x < 0.6 else "a" if x < 0.93 else "this"
        x = r()
        if x < _ADJECTIVES_CDF[0]:
            adjectives = ()
        elif x < _ADJECTIVES_CDF[1]:
            group = groups[int(r() * len(groups))]
            adjectives = (group[int(r() * len(group))],)
        else:
            k = 2 if x < _ADJECTIVES_CDF[2] else 3
            if k < len(groups):
                groups = [groups[i] for i in sorted(_random_sample(r, len(groups), k))]
            adjectives = [g[int(r() * len(g))] for g in groups]
        very = adjectives and adjectives[0][1] and r() < _P_VERY
        children = []
        if det is not None:
            if det == "a":
                following = "very" if very else adjectives[0][0] if adjectives else noun
                det = "an" if following[0] in "aeiou" else "a"
            children.append(("DT", det, len(words)))
            words.append(det)
        if number is not None:
            children.append(("CD", number, len(words)))
            words.append(number)
        for word, _ in adjectives:
            if very:
                very = False
                i = len(words)
                children.append(("ADJP", [("RB", "very", i), ("JJ", word, i + 1)]))
                words.append("very")
            else:
                children.append(("JJ", word, len(words)))
            words.append(word)
        children.append((tag, noun, len(words)))
        words.append(noun)
        return ("NP", children), n, plural

    def full_noun_phrase(
        self, nouns: Sequence[int], tense: str, p_relative: float
    ) -> tuple[tuple, bool]:
        """A noun phrase, maybe with an "of" phrase or a relative clause."""
        base, n, plural = self.noun_phrase(nouns)
        of_classes = _NOUNS[n][3]
        x = self.random()
        if of_classes and x < _P_OF:
            of = self.leaf("IN", "of")
            complement = self.noun_phrase(_NOUN_CHOICES[of_classes])[0]
            return ("NP", [base, ("PP", [of, complement])]), plural
        if x > 1.0 - p_relative:
            relative = self.relative_clause(_NOUNS[n][2], plural, tense)
            if relative is not None:
                return ("NP", [base, relative]), plural
        return base, plural

    def relative_clause(self, cls: str, plural: bool, tense: str) -> tuple | None:
        subject_verbs, object_verbs = _SUBJECT_VERBS[cls], _OBJECT_VERBS[cls]
        subject_relative = self.random() < _P_SUBJECT_RELATIVE
        if not (subject_verbs if subject_relative else object_verbs):
            subject_relative = not subject_relative
            if not (subject_verbs if subject_relative else object_verbs):
                return None
        that = ("WHNP", [self.leaf("WDT", "that")])
        if subject_relative:
            verb = _VERBS[self.pick(subject_verbs)]
            vp, rest = self.verb_group(verb, tense, plural)
            if verb[4]:
                rest.append(self.noun_phrase(_NOUN_CHOICES[verb[4]])[0])
            clause = [vp]
        else:
            verb = _VERBS[self.pick(object_verbs)]
            subject, _, subject_plural = self.noun_phrase(_NOUN_CHOICES[verb[3]])
            clause = [subject, self.verb_group(verb, tense, subject_plural)[0]]
        return ("SBAR", [that, ("S", clause)])


def _random_sample(r, population: int, k: int) -> list[int]:
    """k distinct integers below `population`, drawn with the generator's `random`."""
    chosen: list[int] = []
    while len(chosen) < k:
        i = int(r() * population)
        if i not in chosen:
            chosen.append(i)
    return chosen


# --- reading the translation off a tree ---------------------------------------------------------
_DO_FORMS = frozenset({"did", "does", "do", "will"})


class _Translator:
    """Walks a source tree and emits target words, each with the source indices it links to."""

    def __init__(self, lex: _TargetLexicon) -> None:
        self.fn = lex.words  # function words by gloss: "PST", "PL", ...
        # Every source form names one lemma, so content words translate by form.
        self.word_of: dict[str, str] = {}
        self.definite_of: dict[str, str] = {}
        for i, (singular, plural, *_) in enumerate(_NOUNS):
            for form in (singular, plural):
                self.word_of[form] = lex.noun[i]
                self.definite_of[form] = lex.noun_definite[i]
        for base, third, past, *_ in _VERBS:
            for form in (base, third, past):
                self.word_of[form] = lex.words["verb:" + base]
        for key, word in lex.words.items():
            kind, _, lemma = key.partition(":")
            if lemma and kind != "verb":
                self.word_of[lemma] = word
        self.out: list[tuple[str, tuple[int, ...]]] = []

    def sentence(self, root: tuple) -> list[tuple[str, tuple[int, ...]]]:
        self.out = out = []
        children = root[1]
        if any(c[0] == "VP" for c in children):
            self.clause(root, main=True)
        else:
            for child in children:
                if len(child) == 2:
                    self.clause(child, main=True)
                elif child[0] == "CC":
                    out.append((self.fn["AND" if child[1] == "and" else "BUT"], (child[2],)))
                else:
                    out.append((child[1], (child[2],)))
        return out

    def clause(self, node: tuple, main: bool) -> None:
        out, fn, word_of = self.out, self.fn, self.word_of
        subject = vp = period = None
        for child in node[1]:
            label = child[0]
            if label == "NP":
                subject = child
            elif label == "VP":
                vp = child
            elif label == ".":
                period = child
            elif label == ",":
                out.append((",", (child[2],)))
            else:  # a fronted adverbial clause
                self.sbar(child)
        # The verb group: "saw", "sees", "did not see", "will see" ...
        children = vp[1]
        first = children[0]
        if first[1] in _DO_FORMS:
            if children[1][0] == "RB":  # not
                gloss = "NEGFUT" if first[1] == "will" else "NEGPST" if first[1] == "did" else "NEG"
                aux = (fn[gloss], (first[2], children[1][2]))
            else:
                aux = (fn["FUT"], (first[2],))
            inner = children[-1][1]
            head = inner[0]
            verb = (word_of[head[1]], (head[2],))
            rest = inner[1:]
        else:
            verb = (word_of[first[1]], (first[2],))
            aux = (fn["PST"], (first[2],)) if first[0] == "VBD" else None
            rest = children[1:]
        obj = adverb = sbar = None
        pps = []
        for child in rest:
            label = child[0]
            if label == "NP":
                obj = child
            elif label == "PP":
                pps.append(child)
            elif label == "ADVP":
                leaf = child[1][0]
                adverb = (word_of[leaf[1]], (leaf[2],))
            else:
                sbar = child
        if main:  # verb first: AUX V ADV SUBJ OBJ PP* SBAR
            if aux is not None:
                out.append(aux)
            out.append(verb)
            if adverb is not None:
                out.append(adverb)
            self.noun_phrase(subject)
            if obj is not None:
                self.noun_phrase(obj)
            self.postpositional_phrases(pps)
            if sbar is not None:
                self.sbar(sbar)
        else:  # verb last: SUBJ OBJ PP* ADV V AUX
            if subject is not None:
                self.noun_phrase(subject)
            if obj is not None:
                self.noun_phrase(obj)
            self.postpositional_phrases(pps)
            if adverb is not None:
                out.append(adverb)
            out.append(verb)
            if aux is not None:
                out.append(aux)
        if period is not None:
            out.append((".", (period[2],)))

    def sbar(self, node: tuple) -> None:
        head, clause = node[1]
        if head[0] == "WHNP":  # relative clause: REL + verb-final clause
            gloss = "RELO" if clause[1][0][0] == "NP" else "RELS"
            self.out.append((self.fn[gloss], (head[1][0][2],)))
            self.clause(clause, main=False)
        else:  # adverbial clause: verb-final clause + conjunction
            leaf = head if len(head) == 3 else head[1][0]
            self.clause(clause, main=False)
            self.out.append((self.word_of[leaf[1]], (leaf[2],)))

    def postpositional_phrases(self, pps: Sequence[tuple]) -> None:
        """Each `PP` as its noun phrase, then the preposition's target word (a postposition)."""
        for pp in pps:
            preposition, np = pp[1]
            self.noun_phrase(np)
            self.out.append((self.word_of[preposition[1]], (preposition[2],)))

    def noun_phrase(self, node: tuple) -> None:
        out = self.out
        children = node[1]
        first = children[0]
        if first[0] == "NP":  # NP NP ...: coordination, "of" phrase or relative clause
            second = children[1]
            if second[0] == "CC":  # X and Y
                self.noun_phrase(first)
                out.append((self.fn["NPAND"], (second[2],)))
                self.noun_phrase(children[2])
            elif second[0] == "PP":  # X of Y -> Y GEN X
                of, complement = second[1]
                self.noun_phrase(complement)
                out.append((self.fn["GEN"], (of[2],)))
                self.noun_phrase(first)
            else:
                self.noun_phrase(first)
                self.sbar(second)
            return
        word_of = self.word_of
        noun = children[-1]
        if first[0] != "DT":
            out.append((word_of[noun[1]], (noun[2],)))
            det = None
        else:
            det = first[1]
            if det == "the":
                out.append((self.definite_of[noun[1]], (first[2], noun[2])))
            elif det == "a" or det == "an":
                out.append((word_of[noun[1]], (first[2], noun[2])))
            else:
                out.append((word_of[noun[1]], (noun[2],)))
        number = None
        for child in reversed(children):  # adjectives in mirror order
            tag = child[0]
            if tag == "JJ":
                out.append((word_of[child[1]], (child[2],)))
            elif tag == "ADJP":  # (ADJP (RB very) (JJ big)) -> big VERY
                very, adjective = child[1]
                out.append((word_of[adjective[1]], (adjective[2],)))
                out.append((self.fn["VERY"], (very[2],)))
            elif tag == "CD":
                number = child
        if number is not None:
            out.append((word_of[number[1]], (number[2],)))
        elif noun[0] == "NNS":
            out.append((self.fn["PL"], (noun[2],)))
        if det == "this" or det == "these":
            out.append((self.fn["DEM"], (first[2],)))


def _bracketed(node: tuple) -> str:
    if len(node) == 3:
        return f"({node[0]} {node[1]})"
    return f"({node[0]} {' '.join(_bracketed(child) for child in node[1])})"


# --- public API ---------------------------------------------------------------------------------
def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}. Received: {name}={value!r}")


def _draw_trees(size: int, seed: int, min_words: int, max_words: int):
    """Yields (tree, words) for `size` sentences whose length is in [min_words, max_words]."""
    _check_int("size", size, 0)
    _check_int("seed", seed, 0)
    _check_int("min_words", min_words, 0)
    _check_int("max_words", max_words, 3)
    if min_words > max_words:
        raise ValueError(
            "`min_words` must not exceed `max_words`. "
            f"Received: min_words={min_words}, max_words={max_words}"
        )
    builder = _TreeBuilder(random.Random(seed))
    # Lengths are filtered by rejection: a range deep in the tail is slow, and one
    # the grammar cannot reach must end with an error, not a hang.
    budget = 10_000 + 1000 * size
    made = 0
    while made < size:
        if budget == 0:
            raise ValueError(
                f"Could not draw {size} sentences of {min_words} to {max_words} words "
                f"(found {made} in {10_000 + 1000 * size} tries); widen the range. "
                f"Received: min_words={min_words}, max_words={max_words}"
            )
        budget -= 1
        tree = builder.sentence()
        if min_words <= len(builder.words) <= max_words:
            made += 1
            yield tree, builder.words


def generate_translation_pairs(
    size: int,
    seed: int = 0,
    *,
    min_words: int = 3,
    max_words: int = 60,
    vocabulary_seed: int = 0,
) -> list[TranslationExample]:
    """Draws sentence pairs of the synthetic grammar with their gold alignments.

    Args:
        size: the number of examples.
        seed: picks the sentences; the same seed gives the same list.
        min_words: the shortest source sentence kept, in words (punctuation
            counts as a word); sentences outside the range are redrawn.
        max_words: the longest source sentence kept.
        vocabulary_seed: picks the invented target words.

    Returns:
        `size` `TranslationExample`s. Short sentences can repeat (there are
        only so many three-word sentences); `split_examples` keeps held-out
        sources out of training. The i-th example's tree is the i-th one
        `generate_source_trees` gives for the same seed and length range.
    """
    _check_int("vocabulary_seed", vocabulary_seed, 0)
    translator = _Translator(_target_lexicon(vocabulary_seed))
    examples = []
    for tree, words in _draw_trees(size, seed, min_words, max_words):
        out = translator.sentence(tree)
        alignment = [(s, t) for t, (_, links) in enumerate(out) for s in links]
        alignment.sort()
        target = " ".join([word for word, _ in out])
        examples.append(TranslationExample(" ".join(words), target, tuple(alignment)))
    return examples


def generate_source_trees(
    size: int, seed: int = 0, *, min_words: int = 3, max_words: int = 60
) -> list[str]:
    """The Penn-style bracketed trees of the sentences `generate_translation_pairs` draws.

    Args:
        size, seed, min_words, max_words: as for `generate_translation_pairs`;
            the same arguments give the trees of the same sentences, in order.

    Returns:
        One string per sentence, e.g.
        ``(S (NP (DT the) (NN dog)) (VP (VBD saw) (NP (DT a) (NN cat))) (. .))``,
        with Penn Treebank labels and tags and no empty elements.
    """
    return [_bracketed(tree) for tree, _ in _draw_trees(size, seed, min_words, max_words)]


def split_examples(
    examples: Sequence[Any], validation_size: int, test_size: int, seed: int = 0
) -> tuple[list, list, list]:
    """Splits examples into train, validation and test with no source shared between them.

    Held-out examples are drawn in a seeded random order, each source at most
    once; every example whose source was drawn for validation or test is kept
    out of training, so a held-out source never appears in train. Train keeps
    the input order (duplicates of other sources included); validation and
    test keep it too.

    Args:
        examples: `TranslationExample`s, or (source, target, ...) tuples.
        validation_size: the number of validation examples.
        test_size: the number of test examples.
        seed: picks the held-out examples.

    Returns:
        `(train, validation, test)` lists.
    """
    _check_int("validation_size", validation_size, 0)
    _check_int("test_size", test_size, 0)

    def source(example: Any) -> str:
        return example.source if hasattr(example, "source") else example[0]

    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held_out: dict[str, str] = {}
    chosen: dict[int, str] = {}
    for i in order:
        if len(chosen) == validation_size + test_size:
            break
        key = source(examples[i])
        if key in held_out:
            continue
        held_out[key] = "test" if len(chosen) < test_size else "validation"
        chosen[i] = held_out[key]
    if len(chosen) < validation_size + test_size:
        raise ValueError(
            f"Not enough distinct sources for the held-out sets: {len(held_out)} distinct, "
            f"but validation_size + test_size = {validation_size + test_size}."
        )
    train = [x for x in examples if source(x) not in held_out]
    validation = [examples[i] for i in sorted(chosen) if chosen[i] == "validation"]
    test = [examples[i] for i in sorted(chosen) if chosen[i] == "test"]
    return train, validation, test
