"""Tokenizers that run inside an exported SavedModel graph (tensorflow-text).

The word and WordPiece tokenizers normalise text with `normalize_text`
(lower-cased, accents stripped, punctuation split); the SentencePiece one
keeps text as it is and detokenises it exactly. Every tokenizer reserves ids 0-3 for
`[PAD]`, `[UNK]`, `[START]`, `[END]`, and offers `tokenize`, `detokenize`,
`id_to_token`, `save`/`load` and `get_config`/`from_config`. A SavedModel that
uses one loads with plain `tf.saved_model.load` after `import tensorflow_text`.
"""

from typing import Any

from zoo.text.normalization import normalize_python, normalize_text
from zoo.text.sentencepiece_tokenizer import SentencePieceTokenizer
from zoo.text.symbol_tokenizer import SymbolTokenizer
from zoo.text.vocabulary import (
    END_ID,
    END_TOKEN,
    NUM_RESERVED,
    PAD_ID,
    PAD_TOKEN,
    RESERVED_TOKENS,
    START_ID,
    START_TOKEN,
    UNK_ID,
    UNK_TOKEN,
    VocabularyTokenizer,
)
from zoo.text.word_tokenizer import WordTokenizer
from zoo.text.wordpiece_tokenizer import WordPieceTokenizer

TOKENIZERS = {
    SentencePieceTokenizer.kind: SentencePieceTokenizer,
    WordPieceTokenizer.kind: WordPieceTokenizer,
    WordTokenizer.kind: WordTokenizer,
    SymbolTokenizer.kind: SymbolTokenizer,
}


def tokenizer_from_config(config: dict[str, Any]) -> VocabularyTokenizer:
    """Builds a tokenizer from `get_config()`'s dict (`kind`: one of `TOKENIZERS`).

    The dict names either `vocab` (a list of tokens) or `vocab_file` (a
    `vocab.txt` path), and optionally `lowercase`; a "sentencepiece" one names
    `model` (base64) or `model_file` instead.
    """
    kind = config.get("kind")
    if kind not in TOKENIZERS:
        raise ValueError(
            f"Unknown tokenizer kind; expected one of {sorted(TOKENIZERS)}. Received: kind={kind!r}"
        )
    return TOKENIZERS[kind].from_config(config)


__all__ = [
    "END_ID",
    "END_TOKEN",
    "NUM_RESERVED",
    "PAD_ID",
    "PAD_TOKEN",
    "RESERVED_TOKENS",
    "START_ID",
    "START_TOKEN",
    "SentencePieceTokenizer",
    "SymbolTokenizer",
    "TOKENIZERS",
    "UNK_ID",
    "UNK_TOKEN",
    "VocabularyTokenizer",
    "WordPieceTokenizer",
    "WordTokenizer",
    "normalize_python",
    "normalize_text",
    "tokenizer_from_config",
]
