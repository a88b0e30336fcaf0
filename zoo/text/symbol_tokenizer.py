"""Exact, unnormalised tokenizer for symbol sequences such as linearised parse trees."""

import os
from collections.abc import Iterable
from typing import Any

import tensorflow as tf

from zoo.text.vocabulary import (
    CONFIG_FILENAME,
    NUM_RESERVED,
    RESERVED_TOKENS,
    VOCAB_FILENAME,
    check_vocab_size,
    count_words,
    string_batch,
)
from zoo.text.word_tokenizer import WordTokenizer


class SymbolTokenizer(WordTokenizer):
    """Splits text on whitespace and looks every symbol up exactly as written.

    Meant for targets that are sequences of symbols rather than natural
    language, such as the linearised trees of the parsing recipe
    (`(S (NP XX XX )NP (VP XX )VP )S`): no normalisation happens at all, so
    case, accents and punctuation are kept and `(NP`, `(-LRB-` or `(,` are
    single symbols. Symbols missing from the vocabulary become `[UNK]`
    (id 1). The lookup is a `tf.lookup.StaticHashTable` initialised from
    constants, so it is saved inside a SavedModel with no asset file (keep the
    tokenizer an attribute of the module you save).

    Ids 0-3 are `[PAD]`, `[UNK]`, `[START]`, `[END]`; `tokenize` adds no start
    or end token. A reserved token written in the text (`[END]`) is looked up
    like any other symbol and gets its reserved id.

    `detokenize(tokenize(x)) == x` for every `x` whose symbols are all in the
    vocabulary and are separated by single spaces (runs of whitespace, and
    leading or trailing whitespace, are not preserved).

    Args:
        vocab: list of symbols, the four reserved tokens first.
        name: name of the `tf.Module`.

    Call arguments:
        tokenize(strings): string tensor (batch_size,) -> int32 `RaggedTensor`
            (batch_size, None).
        detokenize(ids): int tensor (batch_size, T), dense or ragged -> string
            tensor (batch_size,); special tokens dropped, symbols joined by
            single spaces.
        id_to_token(ids): int ids of any shape -> the symbols.

    Example:

    >>> tokenizer = SymbolTokenizer.build(["(S (NP XX )NP )S"])
    >>> ids = tokenizer.tokenize(tf.constant(["(S (VP XX )VP )S"]))
    >>> tokenizer.detokenize(ids)
    ... # [b"(S XX )S"]: "(VP" and ")VP" are [UNK], dropped by detokenize
    """

    kind = "symbol"

    def __init__(self, vocab: list[str], name: str | None = None):
        # `lowercase` only exists for the base class's normalisation, which
        # `words` below never calls.
        # The word tokenizer's exact-match table, without its normalisation.
        super().__init__(vocab, lowercase=False, name=name)

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        vocab_size: int | None = None,
        batch_size: int = 4096,
        *,
        min_count: int = 1,
    ) -> "SymbolTokenizer":
        """The reserved tokens, then the symbols of `texts` by descending frequency.

        Ties are broken by code point order, so the result is deterministic and
        independent of the order of `texts`. `vocab_size` (reserved tokens
        included) keeps only the most frequent symbols; None keeps them all.
        Symbols seen fewer than `min_count` times are left out.
        Texts are split with the same op as `tokenize`, `batch_size` at a time.
        """
        if vocab_size is not None:
            check_vocab_size(vocab_size)
        counts = count_words(texts, batch_size=batch_size, normalize=False)
        for token in RESERVED_TOKENS:
            counts.pop(token, None)
        ranked = sorted(
            (item for item in counts.items() if item[1] >= min_count),
            key=lambda item: (-item[1], item[0]),
        )
        if vocab_size is not None:
            ranked = ranked[: vocab_size - NUM_RESERVED]
        return cls(list(RESERVED_TOKENS) + [symbol for symbol, _ in ranked])

    def words(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """The symbols, unnormalised, string `RaggedTensor` (batch_size, None)."""
        strings = string_batch(strings)
        return tf.strings.split(strings)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["lowercase"]
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SymbolTokenizer":
        """Builds from `get_config()`'s dict, or one naming a `vocab_file` instead of `vocab`.

        `lowercase: false` (written by `save`) is accepted; `lowercase: true`
        is an error, since this tokenizer never normalises.
        """
        config = dict(config)
        lowercase = config.pop("lowercase", False)
        if lowercase:
            raise ValueError(
                f"{cls.__name__} never normalises text. Received: lowercase={lowercase!r}"
            )
        return super().from_config(config)

    @classmethod
    def load(cls, directory: str) -> "SymbolTokenizer":
        """Reads what `save` wrote (`tokenizer.json` is optional)."""
        # The base class assumes lowercase=True when tokenizer.json is missing.
        if not os.path.exists(os.path.join(directory, CONFIG_FILENAME)):
            return cls.from_config({"vocab_file": os.path.join(directory, VOCAB_FILENAME)})
        return super().load(directory)

    def __repr__(self) -> str:
        return f"SymbolTokenizer(vocab_size={self.vocab_size})"
