import unicodedata

import pytest
import tensorflow as tf

from zoo.text import normalize_python, normalize_text

VARIED = [
    "",
    "   ",
    "Hello, World!",
    "  multiple   spaces\tand\ttabs\nnew lines  ",
    "Straße über Äpfel, Öl und Übermut; größer!",
    "Der Fluß fließt -- schön, nicht?",
    "Élève à l'école, où est-ce? Ça va: très bien…",
    "naïve café résumé coöperate Noël",
    "«Guillemets» „Anführungszeichen“ “quotes” (brackets) [x] {y}",
    "a+b=c $5 <tag> ^_^ `code` |pipe| ~tilde 100% #1 @me & you",
    "ﬁnance Ⅻ ½ x² ＡＢＣ",  # compatibility characters (NFKC when lowercasing)
    "non\u00a0breaking\u2009thin\u3000ideographic space",
    "soft\u00adhyphen zero\u200bwidth",
    "ΣΊΣΥΦΟΣ İstanbul ǅemal",
    "東京は大きい。你好，世界！",
    "한국어 텍스트",
    "Emoji 🙂 stay, ☃ too",
    "dots... and-hyphens and under_scores",
]


@pytest.mark.parametrize("lowercase", [True, False])
def test_python_twin_matches_tensorflow(lowercase):
    got = normalize_text(tf.constant(VARIED), lowercase=lowercase).numpy()
    assert [g.decode("utf-8") for g in got] == [normalize_python(s, lowercase) for s in VARIED]


@pytest.mark.parametrize("lowercase", [True, False])
def test_python_twin_matches_tensorflow_on_every_bmp_character(lowercase):
    # Characters unassigned in Python's Unicode tables may be known to ICU/RE2: skip them.
    chars = [
        chr(c)
        for c in range(0x10000)
        if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) != "Cn"
    ]
    texts = [f"A{c}b" for c in chars]
    got = normalize_text(tf.constant(texts), lowercase=lowercase).numpy()
    mismatches = [
        (hex(ord(c)), g.decode("utf-8"))
        for c, t, g in zip(chars, texts, got, strict=True)
        if g.decode("utf-8") != normalize_python(t, lowercase)
    ]
    assert mismatches == []


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", ""),
        ("Straße über Äpfel", "strasse uber apfel"),
        ("Élève à l'école, où?", "eleve a l ' ecole , ou ?"),
        ("  Hello,   World!  ", "hello , world !"),
        ("a+b", "a + b"),
        ("你好", "你 好"),
        ("한국어", "한국어"),  # Hangul is recomposed after the marks are stripped
    ],
)
def test_normalization_examples(text, expected):
    assert normalize_python(text) == expected
    assert normalize_text(tf.constant([text])).numpy()[0].decode("utf-8") == expected


def test_without_lowercase_keeps_case_but_strips_accents():
    assert normalize_python("Straße Über", lowercase=False) == "Straße Uber"


def test_normalize_text_in_tf_function_keeps_shape():
    fn = tf.function(normalize_text, input_signature=[tf.TensorSpec([None], tf.string)])
    out = fn(tf.constant(["A, b", ""]))
    assert out.numpy().tolist() == [b"a , b", b""]
    assert fn(tf.constant([], tf.string)).shape == (0,)
    assert normalize_text(tf.constant([["Ä"], ["B!"]])).shape == (2, 1)
