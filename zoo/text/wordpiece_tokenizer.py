"""WordPiece (subword) tokenizer that runs inside an exported SavedModel."""

from collections.abc import Iterable

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from zoo.text.vocabulary import (
    RESERVED_TOKENS,
    VocabularyTokenizer,
    check_vocab_size,
    count_words,
)

SUFFIX_INDICATOR = "##"


class WordPieceTokenizer(VocabularyTokenizer):
    """Normalises text, splits it into words, then words into WordPiece subwords.

    Text goes through `normalize_text` (case folding, accents removed,
    punctuation split off), is split on spaces, and each word is cut into the
    longest vocabulary pieces by `tensorflow_text.FastWordpieceTokenizer`;
    continuation pieces start with `##`. A word that cannot be cut (a
    character missing from the vocabulary, or longer than 100 bytes) becomes
    one `[UNK]`. The WordPiece model is a constant in the graph: a SavedModel
    needs no asset file, only `import tensorflow_text` before loading.

    Ids 0-3 are `[PAD]`, `[UNK]`, `[START]`, `[END]`; `tokenize` adds no start
    or end token.

    Args:
        vocab: list of tokens, the four reserved tokens first; continuation
            pieces prefixed with `##`.
        lowercase: case-fold before tokenizing. The learned vocabulary and the
            tokenizer must agree on it.
        name: name of the `tf.Module`.

    Call arguments:
        tokenize(strings): string tensor (batch_size,) -> int32 `RaggedTensor`
            (batch_size, None).
        detokenize(ids): int tensor (batch_size, T), dense or ragged -> string
            tensor (batch_size,); special tokens dropped, pieces joined into
            words, words joined by single spaces.
        id_to_token(ids): int ids of any shape -> the subword strings.

    Example:

    >>> tokenizer = WordPieceTokenizer.build(["Hello world!", "Hello there."], 100)
    >>> ids = tokenizer.tokenize(tf.constant(["Hello, World"]))
    >>> tokenizer.detokenize(ids)
    ... # [b"hello world"]: "," was never seen, so it is [UNK], which detokenize drops

    References:
        Wu et al. 2016, Google's Neural Machine Translation System (WordPiece).
        Song et al. 2021, Fast WordPiece Tokenization.
    """

    kind = "wordpiece"

    def __init__(self, vocab: list[str], lowercase: bool = True, name: str | None = None):
        super().__init__(vocab, lowercase=lowercase, name=name)
        # `no_pretokenization=True`: the tokenizer's own pre-splitting (whitespace,
        # BERT punctuation, CJK) would be a second definition of a word; we split
        # the normalised text ourselves, exactly as the vocabulary learner did.
        # `support_detokenization=False`: `detokenize` joins the vocabulary's
        # strings with core string ops (shared with `WordTokenizer`), so the
        # model constant need not carry the detokenization tables.
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocab,
            suffix_indicator=SUFFIX_INDICATOR,
            token_out_type=tf.int32,
            unknown_token=RESERVED_TOKENS[1],
            no_pretokenization=True,
            support_detokenization=False,
        )

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        *,
        lower_thresh: int = 2,
        lowercase: bool = True,
    ) -> "WordPieceTokenizer":
        """Learns a vocabulary of at most `vocab_size` tokens from `texts`.

        Uses the learner behind `bert_vocab_from_dataset`
        (`wordpiece_tokenizer_learner_lib.learn`) on word counts of the
        normalised texts. `vocab_size` is a maximum: the learner stops within
        5% below it, or lower when pieces rarer than `lower_thresh` would be
        needed. Deterministic: the same texts give the same vocabulary.
        """
        check_vocab_size(vocab_size)
        counts = count_words(texts, lowercase)
        # Sorted input makes the result independent of the order of `texts`.
        word_counts = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if word_counts:
            vocab = learner.learn(
                word_counts,
                vocab_size,
                list(RESERVED_TOKENS),
                lower_thresh=lower_thresh,
                joiner=SUFFIX_INDICATOR,
            )
        else:
            vocab = list(RESERVED_TOKENS)
        # The learner keeps every character (and its `##` form) even when that
        # overshoots `vocab_size`; after the single characters, tokens come
        # most frequent first, so cutting the tail drops the rarest ones.
        return cls(vocab[:vocab_size], lowercase=lowercase)

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Subword ids, int32 `RaggedTensor` (batch_size, None)."""
        pieces = self._wordpiece.tokenize(self.words(strings))  # (batch, words, pieces)
        return pieces.merge_dims(1, 2)

    def _join(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        pieces = tokens.flat_values
        is_continuation = tf.strings.regex_full_match(pieces, "##.+")
        pieces = tf.where(
            is_continuation,
            tf.strings.regex_replace(pieces, "^##", ""),
            tf.strings.join([" ", pieces]),
        )
        joined = tf.strings.reduce_join(tokens.with_flat_values(pieces), axis=-1)
        return tf.strings.strip(joined)

    def __repr__(self) -> str:
        return f"WordPieceTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"
