"""Word-level tokenizer that runs inside an exported SavedModel."""

from collections.abc import Iterable

import tensorflow as tf

from zoo.text.vocabulary import (
    NUM_RESERVED,
    RESERVED_TOKENS,
    UNK_ID,
    VocabularyTokenizer,
    check_vocab_size,
    count_words,
)


class WordTokenizer(VocabularyTokenizer):
    """Normalises text, splits it on spaces and looks every word up.

    Text goes through `normalize_text` (case folding, accents removed,
    punctuation split off into words of its own); words missing from the
    vocabulary become `[UNK]` (id 1). The lookup is a
    `tf.lookup.StaticHashTable` initialised from constants, so it is saved
    inside a SavedModel with no asset file (keep the tokenizer an attribute of
    the module you save).

    Ids 0-3 are `[PAD]`, `[UNK]`, `[START]`, `[END]`; `tokenize` adds no start
    or end token.

    Args:
        vocab: list of words, the four reserved tokens first.
        lowercase: case-fold before tokenizing.
        name: name of the `tf.Module`.

    Call arguments:
        tokenize(strings): string tensor (batch_size,) -> int32 `RaggedTensor`
            (batch_size, None).
        detokenize(ids): int tensor (batch_size, T), dense or ragged -> string
            tensor (batch_size,); special tokens dropped, words joined by single
            spaces.
        id_to_token(ids): int ids of any shape -> the words.

    Example:

    >>> tokenizer = WordTokenizer.build(["a cat sat", "a dog sat"], vocab_size=8)
    >>> tokenizer.detokenize(tokenizer.tokenize(tf.constant(["A cat ran!"])))
    ... # [b"a cat"]: "ran" and "!" are [UNK], dropped by detokenize
    """

    kind = "word"

    def __init__(self, vocab: list[str], lowercase: bool = True, name: str | None = None):
        super().__init__(vocab, lowercase=lowercase, name=name)
        initializer = tf.lookup.KeyValueTensorInitializer(
            keys=tf.constant(self.vocab, tf.string),
            values=tf.range(self.vocab_size, dtype=tf.int32),
        )
        self._table = tf.lookup.StaticHashTable(initializer, default_value=UNK_ID)

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        *,
        min_count: int = 1,
        lowercase: bool = True,
    ) -> "WordTokenizer":
        """Keeps the `vocab_size - 4` most frequent normalised words of `texts`.

        Ties are broken by code point order, so the result is deterministic and
        independent of the order of `texts`. Words seen fewer than `min_count`
        times are left out.
        """
        check_vocab_size(vocab_size)
        counts = count_words(texts, lowercase)
        ranked = sorted(
            (item for item in counts.items() if item[1] >= min_count),
            key=lambda item: (-item[1], item[0]),
        )
        words = [word for word, _ in ranked[: vocab_size - NUM_RESERVED]]
        return cls(list(RESERVED_TOKENS) + words, lowercase=lowercase)

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Word ids, int32 `RaggedTensor` (batch_size, None)."""
        words = self.words(strings)
        return words.with_flat_values(self._table.lookup(words.flat_values))

    def _join(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        return tf.strings.reduce_join(tokens, axis=-1, separator=" ")

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"
