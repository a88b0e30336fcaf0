"""Text normalisation shared by every tokenizer, in TensorFlow ops and in Python.

`normalize_text` runs inside a graph (and so inside an exported SavedModel);
`normalize_python` gives the same strings in plain Python, for references,
metrics and tests. Both define what a "word" is for the whole package: after
normalisation, words are the pieces between single ASCII spaces. The vocabulary
learners and the tokenizers split on that and nothing else, so they cannot
disagree with each other.

Steps, in order:

1. `lowercase=True`: `tensorflow_text.case_fold_utf8`, which is ICU's
   NFKC_Casefold (NFKC, full case folding, default-ignorable code points
   removed: "Straße" -> "strasse", "ﬁ" -> "fi", "½" -> "1⁄2", no-break space ->
   space).
2. NFD, remove combining marks (`\\p{Mn}`), then NFC again: accents go
   ("é" -> "e", "ä" -> "a"), the way BERT's uncased vocabulary learner sees text,
   while scripts whose letters decompose into letters (Hangul) are recomposed.
3. Whitespace (`\\t\\n\\v\\f\\r`, U+0085 and `\\p{Z}`) becomes a space; other
   control and format characters (`\\p{Cc}`, `\\p{Cf}`) are removed.
4. Every punctuation character becomes a word of its own: Unicode `\\p{P}`,
   the ASCII symbols BERT counts as punctuation (``$+<=>^`|~``), and CJK
   ideographs (which are written without spaces).
5. Runs of spaces collapse to one; leading and trailing spaces go.
"""

import unicodedata

import tensorflow as tf
import tensorflow_text as tf_text

# ASCII symbols BERT splits like punctuation although Unicode calls them symbols (\p{S}).
_ASCII_PUNCTUATION_RE2 = r"!-/:-@\[-`{-~"
# CJK Unified Ideographs (and extensions), CJK Compatibility Ideographs, as in BERT.
_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2CEAF),
    (0x2F800, 0x2FA1F),
)
_CJK_RE2 = "".join(rf"\x{{{lo:X}}}-\x{{{hi:X}}}" for lo, hi in _CJK_RANGES)

_WHITESPACE_RE2 = r"[\t\n\x0B\f\r\x{85}\p{Z}]"
_CONTROL_RE2 = r"[\p{Cc}\p{Cf}]"
_MARK_RE2 = r"\p{Mn}"
_SPLIT_RE2 = rf"([\p{{P}}{_ASCII_PUNCTUATION_RE2}{_CJK_RE2}])"

_WHITESPACE_CHARS = frozenset("\t\n\x0b\f\r\x85")

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties): NFKC_Casefold, and
# so `case_fold_utf8`, removes these; Python's `str.casefold` keeps them.
_DEFAULT_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def normalize_text(strings: tf.Tensor | list[str], lowercase: bool = True) -> tf.Tensor:
    """Normalises UTF-8 strings with TensorFlow ops (graph-safe, any shape).

    Args:
        strings: a string `tf.Tensor` (or anything convertible to one), any shape.
        lowercase: apply Unicode case folding (with NFKC) first.

    Returns:
        A string `tf.Tensor` of the same shape: accents removed, punctuation
        split off into words of its own, words separated by single spaces.
    """
    strings = tf.convert_to_tensor(strings, dtype=tf.string)
    if lowercase:
        strings = tf_text.case_fold_utf8(strings)
    strings = tf_text.normalize_utf8(strings, "NFD")
    strings = tf.strings.regex_replace(strings, _MARK_RE2, "")
    strings = tf_text.normalize_utf8(strings, "NFC")
    strings = tf.strings.regex_replace(strings, _WHITESPACE_RE2, " ")
    strings = tf.strings.regex_replace(strings, _CONTROL_RE2, "")
    strings = tf.strings.regex_replace(strings, _SPLIT_RE2, r" \1 ")
    strings = tf.strings.regex_replace(strings, " +", " ")
    return tf.strings.strip(strings)


def _is_default_ignorable(code_point: int) -> bool:
    return any(lo <= code_point <= hi for lo, hi in _DEFAULT_IGNORABLE_RANGES)


def _is_cjk(code_point: int) -> bool:
    return any(lo <= code_point <= hi for lo, hi in _CJK_RANGES)


def _case_fold(text: str) -> str:
    # NFKC_Casefold(x) is the closure NFKC(casefold(NFKC(x))) minus default ignorables.
    text = "".join(c for c in text if not _is_default_ignorable(ord(c)))
    text = unicodedata.normalize("NFKC", text)
    text = unicodedata.normalize("NFKC", text.casefold())
    return unicodedata.normalize("NFKC", text.casefold())


def normalize_python(text: str, lowercase: bool = True) -> str:
    """Pure-Python twin of `normalize_text` for one string (same result)."""
    if lowercase:
        text = _case_fold(text)
    text = unicodedata.normalize("NFD", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    text = unicodedata.normalize("NFC", text)
    out = []
    for c in text:
        category = unicodedata.category(c)
        if c in _WHITESPACE_CHARS or category[0] == "Z":
            out.append(" ")
        elif category in ("Cc", "Cf"):
            continue
        elif category[0] == "P" or (c.isascii() and not c.isalnum() and c.isprintable()):
            out.append(f" {c} ")
        elif _is_cjk(ord(c)):
            out.append(f" {c} ")
        else:
            out.append(c)
    return " ".join(w for w in "".join(out).split(" ") if w)
