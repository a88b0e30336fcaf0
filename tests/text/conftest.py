"""A small corpus (English and German) and tokenizers built once per test session."""

import random

import pytest

from zoo.text import WordPieceTokenizer, WordTokenizer

ENGLISH = (
    "the a cat dog sat ran on under mat house garden red small big quickly slowly "
    "sees likes old young man woman child tree river bridge and but"
).split()
GERMAN = (
    "der die das Mädchen Junge läuft schläft über unter Brücke Fluss Straße groß "
    "klein schön grüne Bäume Häuser Café fährt Köln München öffnet Tür"
).split()
PUNCTUATION = [".", "!", "?", ",", ";"]

GERMAN_SENTENCES = [
    "Das Mädchen läuft über die Brücke.",
    "Der Junge schläft unter dem Baum!",
    "Die Straße in Köln ist groß, schön und grün.",
    "Er fährt nach München; sie öffnet die Tür.",
    "Ein Café an der Straße?",
]


def make_corpus(size: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    sentences = []
    for _ in range(size):
        words = ENGLISH if rng.random() < 0.5 else GERMAN
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(3, 9)))
        if rng.random() < 0.5:
            sentence = sentence[0].upper() + sentence[1:]
        sentences.append(sentence + rng.choice(PUNCTUATION))
    return sentences + GERMAN_SENTENCES * 3


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return make_corpus()


@pytest.fixture(scope="session")
def wordpiece(corpus) -> WordPieceTokenizer:
    return WordPieceTokenizer.build(corpus, vocab_size=300)


@pytest.fixture(scope="session")
def word_tokenizer(corpus) -> WordTokenizer:
    return WordTokenizer.build(corpus, vocab_size=200)
