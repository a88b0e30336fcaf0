"""SentencePiece tokenizer: real text in, real text out, inside an exported SavedModel."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from collections.abc import Iterable
from typing import Any

import tensorflow as tf
import tensorflow_text as tf_text
from tensorflow_text.python.ops import sentencepiece_tokenizer as _tf_text_sentencepiece

from zoo.text.vocabulary import (
    NUM_RESERVED,
    RESERVED_TOKENS,
    VocabularyTokenizer,
    check_vocab_size,
    id_batch,
    string_batch,
)

# Lines longer than this many bytes are left out of training (SentencePiece's own limit).
_MAX_SENTENCE_BYTES = 4192


class SentencePieceTokenizer(VocabularyTokenizer):
    """A SentencePiece model (Kudo & Richardson 2018): case, accents and spacing kept.

    Unlike the word and WordPiece tokenizers, nothing is lower-cased, stripped
    of its accents or split at punctuation: text is only NFKC-normalised, and
    spaces are pieces like any other (`"▁"`), so detokenisation gives back
    the text exactly ("I'm sure." -> ids -> "I'm sure."). The model is
    trained by the `sentencepiece` package (`build`) and run by
    `tensorflow_text.SentencepieceTokenizer`, which stores it as a constant in
    the graph: a SavedModel needs no asset file, only `import tensorflow_text`.

    Ids 0-3 are `[PAD]`, `[UNK]`, `[START]`, `[END]`, as for every tokenizer
    of the package; `tokenize` adds no start or end token. A character the
    training text never had becomes `[UNK]`, which `detokenize` drops.

    Args:
        model: the serialized SentencePiece model (`bytes`), whose pieces 0-3
            are the reserved tokens (as `build` trains it).
        lowercase: case-fold text before tokenizing (the model must have been
            trained on case-folded text too). Defaults to `False`.
        name: name of the `tf.Module`.

    Example:

    >>> tokenizer = SentencePieceTokenizer.build(["I'm sure.", "Are you sure?"] * 50, 40)
    >>> tokenizer.detokenize(tokenizer.tokenize(tf.constant(["I'm sure."])))
    ... # [b"I'm sure."]

    References:
        Kudo 2018, Subword Regularization (the unigram model).
        Kudo & Richardson 2018, SentencePiece.
    """

    kind = "sentencepiece"
    can_extend = False
    """A SentencePiece vocabulary is a trained model: pieces cannot be appended to it."""

    def __init__(self, model: bytes, lowercase: bool = False, name: str | None = None):
        model = bytes(model)
        vocab = _pieces(model)
        super().__init__(vocab, lowercase=lowercase, name=name)
        self._model = model
        self._sentencepiece = tf_text.SentencepieceTokenizer(
            model=model, out_type=tf.int32, add_bos=False, add_eos=False
        )
        self._sentencepiece._model_resource = _SharedModel(model)

    @property
    def model(self) -> bytes:
        """The serialized SentencePiece model."""
        return self._model

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        *,
        lowercase: bool = False,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        **_ignored,
    ) -> SentencePieceTokenizer:
        """Trains a model of at most `vocab_size` pieces on `texts` (in memory, no file).

        `character_coverage=1.0` keeps every character of the training text
        (accents included); `vocab_size` is a maximum, so a small text gives a
        smaller vocabulary instead of an error. Deterministic: one thread,
        the texts sorted first.
        """
        import sentencepiece

        check_vocab_size(vocab_size)
        lines = [line for text in texts if (line := _one_line(text))]
        if lowercase:  # the very op `tokenize` runs, so training and use agree
            lines = [
                s.decode("utf-8")
                for start in range(0, len(lines), 4096)
                for s in tf_text.case_fold_utf8(tf.constant(lines[start : start + 4096])).numpy()
            ]
        lines = sorted({line for line in lines if len(line.encode("utf-8")) <= _MAX_SENTENCE_BYTES})
        if not lines:
            raise ValueError("SentencePieceTokenizer.build needs at least one non-empty text")
        buffer = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=buffer,
            vocab_size=vocab_size,
            hard_vocab_limit=False,
            model_type=model_type,
            character_coverage=character_coverage,
            pad_id=0,
            unk_id=1,
            bos_id=2,
            eos_id=3,
            pad_piece=RESERVED_TOKENS[0],
            unk_piece=RESERVED_TOKENS[1],
            bos_piece=RESERVED_TOKENS[2],
            eos_piece=RESERVED_TOKENS[3],
            num_threads=1,
            max_sentence_length=_MAX_SENTENCE_BYTES,
            minloglevel=2,
        )
        return cls(buffer.getvalue(), lowercase=lowercase)

    def words(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """The pieces of each text, string `RaggedTensor` (batch_size, None)."""
        return self.id_to_token(self.tokenize(strings))

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Piece ids, int32 `RaggedTensor` (batch_size, None)."""
        strings = string_batch(strings)
        if self.lowercase:
            strings = tf_text.case_fold_utf8(strings)
        return tf.cast(self._sentencepiece.tokenize(strings), tf.int32)

    def detokenize(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
        """Text for a batch of id sequences, (batch_size, T) dense or ragged.

        Special tokens (ids below 4) are dropped, the pieces joined and their
        `"▁"` turned back into spaces. Returns a string tensor (batch_size,).
        """
        ids = id_batch(ids)
        ids = tf.cast(ids, tf.int32)
        keep = (ids >= NUM_RESERVED) & (ids < self.vocab_size)
        return self._sentencepiece.detokenize(tf.ragged.boolean_mask(ids, keep))

    def get_config(self) -> dict[str, Any]:
        """JSON-able: the model travels base64-encoded."""
        return {
            "kind": self.kind,
            "model": base64.b64encode(self._model).decode("ascii"),
            "lowercase": self.lowercase,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SentencePieceTokenizer:
        config = dict(config)
        kind = config.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"{cls.__name__} expects kind={cls.kind!r}. Received: kind={kind!r}")
        if "model_file" in config:
            with open(config.pop("model_file"), "rb") as f:
                config["model"] = f.read()
        model = config.pop("model", None)
        if model is None:
            raise ValueError("A sentencepiece tokenizer config needs `model` or `model_file`")
        if isinstance(model, str):
            model = base64.b64decode(model)
        return cls(model, **config)

    def save(self, directory: str) -> str:
        """Writes `sentencepiece.model` and `tokenizer.json` to `directory`; returns the model's path."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, "sentencepiece.model")
        with open(path, "wb") as f:
            f.write(self._model)
        config = {
            "kind": self.kind,
            "model_file": "sentencepiece.model",
            "lowercase": self.lowercase,
        }
        with open(os.path.join(directory, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
        return path

    @classmethod
    def load(cls, directory: str) -> SentencePieceTokenizer:
        """Reads what `save` wrote."""
        with open(os.path.join(directory, "tokenizer.json"), encoding="utf-8") as f:
            config = json.load(f)
        config["model_file"] = os.path.join(
            directory, config.get("model_file", "sentencepiece.model")
        )
        return cls.from_config(config)

    def __repr__(self) -> str:
        return f"SentencePieceTokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase})"


class _SharedModel(_tf_text_sentencepiece._SentencepieceModelResource):
    """The SentencePiece model resource, named after the model so that nothing deletes it.

    `tensorflow_text` creates the model without a shared name, which makes it
    private to the op's kernel: in eager mode the kernel lives in a cache that
    `tf.random.set_seed` (and so `keras.utils.set_random_seed`) empties, and
    the resource goes with it ("Resource ... SentencepieceResource does not
    exist" at the next `tokenize`, also from functions traced before).
    Named after a hash of the model, it belongs to the process instead; two
    tokenizers of the same model share it. A SavedModel stores the same
    creating op, so exports load anywhere as before.
    """

    def __init__(self, model: bytes):
        self._shared_name = "zoo_sentencepiece_" + hashlib.sha256(model).hexdigest()[:24]
        super().__init__(model, None)

    def _create_resource(self):
        return _tf_text_sentencepiece.gen_sentencepiece_tokenizer.sentencepiece_op(
            model=self._model, shared_name=self._shared_name
        )


def _one_line(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return " ".join(text.split())


def _pieces(model: bytes) -> list[str]:
    """The model's pieces in id order; its first four must be the reserved tokens."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    if tuple(pieces[:NUM_RESERVED]) != RESERVED_TOKENS:
        raise ValueError(
            f"A SentencePiece model for the zoo has {list(RESERVED_TOKENS)} as pieces 0-3 "
            f"(train it with SentencePieceTokenizer.build). Received: {pieces[:NUM_RESERVED]}"
        )
    return pieces
