"""Reserved tokens and the base class shared by the word and wordpiece tokenizers.

Every tokenizer in the package gives the same ids to the same special tokens:
`[PAD]`=0, `[UNK]`=1, `[START]`=2, `[END]`=3, then its learned vocabulary.
"""

import collections
import json
import os
from collections.abc import Iterable
from typing import Any

import tensorflow as tf

from zoo.text.normalization import normalize_text

PAD_TOKEN, UNK_TOKEN, START_TOKEN, END_TOKEN = "[PAD]", "[UNK]", "[START]", "[END]"
RESERVED_TOKENS = (PAD_TOKEN, UNK_TOKEN, START_TOKEN, END_TOKEN)
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
NUM_RESERVED = len(RESERVED_TOKENS)

VOCAB_FILENAME = "vocab.txt"
CONFIG_FILENAME = "tokenizer.json"


def count_words(
    texts: Iterable[str], lowercase: bool = True, batch_size: int = 4096, *, normalize: bool = True
) -> collections.Counter:
    """Counts the words of `texts` after `normalize_text` (the in-graph one).

    Normalising with the same TensorFlow ops the tokenizer runs at inference
    keeps the learned vocabulary and the tokenizer in agreement; batches keep
    it fast (one op call per batch, not per sentence as in a `Dataset.map`).
    With `normalize=False` the texts are only split on whitespace, as a
    tokenizer of symbols splits them.
    """
    counts = collections.Counter()
    batch = []

    def flush():
        strings = tf.constant(batch, tf.string)
        if normalize:
            strings = normalize_text(strings, lowercase)
        for row in tf.strings.split(strings).to_list():
            counts.update(word.decode("utf-8") for word in row)
        batch.clear()

    for text in texts:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        batch.append(text)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return counts


def string_batch(strings) -> tf.Tensor:
    """`strings` as a string tensor of shape (batch_size,); any other rank is refused."""
    strings = tf.convert_to_tensor(strings, dtype=tf.string)
    if strings.shape.rank is not None and strings.shape.rank != 1:
        raise ValueError(
            f"Expected a 1-D batch of strings, shape (batch_size,). Received: shape={strings.shape}"
        )
    return strings


def id_batch(ids):
    """`ids` as a (batch_size, T) tensor, dense or ragged; any other rank is refused."""
    if not isinstance(ids, tf.RaggedTensor):
        ids = tf.convert_to_tensor(ids)
    if ids.shape.rank is not None and ids.shape.rank != 2:
        raise ValueError(
            f"Expected ids of shape (batch_size, T), dense or ragged. Received: shape={ids.shape}"
        )
    return ids


def check_vocab_size(vocab_size: int) -> None:
    if not isinstance(vocab_size, int) or vocab_size <= NUM_RESERVED:
        raise ValueError(
            f"`vocab_size` must be an int larger than the {NUM_RESERVED} reserved tokens. "
            f"Received: vocab_size={vocab_size!r}"
        )


class VocabularyTokenizer(tf.Module):
    """Base of the tokenizers: a fixed vocabulary living in the graph.

    Subclasses implement `tokenize`, `_join` (how detokenized pieces become a
    string) and set `kind` (the key used by `tokenizer_from_config`). Everything
    here uses TensorFlow ops only, so the methods trace into a `tf.function`
    and a SavedModel. Keep the tokenizer as an attribute of the `tf.Module`
    you save, so its resources (lookup tables) are tracked.

    Args:
        vocab: list of tokens; the first four must be `RESERVED_TOKENS`.
        lowercase: case-fold text before tokenizing (see `normalize_text`).
        name: name of the `tf.Module`.
    """

    kind: str = ""

    def __init__(self, vocab: list[str], lowercase: bool = True, name: str | None = None):
        super().__init__(name=name)
        vocab = [str(token) for token in vocab]
        if tuple(vocab[:NUM_RESERVED]) != RESERVED_TOKENS:
            raise ValueError(
                f"The vocabulary must start with {list(RESERVED_TOKENS)}. "
                f"Received: vocab[:{NUM_RESERVED}]={vocab[:NUM_RESERVED]}"
            )
        bad = [t for t in vocab if not t or t != t.strip() or len(t.split()) != 1]
        if bad:
            raise ValueError(
                f"Tokens must be non-empty and contain no whitespace. Received: {bad[:5]}"
            )
        duplicates = [t for t, n in collections.Counter(vocab).items() if n > 1]
        if duplicates:
            raise ValueError(f"The vocabulary has duplicate tokens. Received: {duplicates[:5]}")
        self.lowercase = bool(lowercase)
        # A tuple of str is not tracked as a dependency (nothing to save for it).
        self._vocab = tuple(vocab)
        # Captured as a graph constant by every function that uses it: no asset file.
        self._vocab_tensor = tf.constant(vocab, dtype=tf.string)

    @property
    def vocab(self) -> list[str]:
        """The tokens, in id order."""
        return list(self._vocab)

    @property
    def vocab_size(self) -> int:
        """Number of tokens, reserved ones included."""
        return len(self._vocab)

    def words(self, strings: tf.Tensor) -> tf.RaggedTensor:
        """Normalised words, string `RaggedTensor` (batch_size, None)."""
        strings = string_batch(strings)
        return tf.strings.split(normalize_text(strings, self.lowercase))

    def tokenize(self, strings: tf.Tensor) -> tf.RaggedTensor:
        raise NotImplementedError

    def id_to_token(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor | tf.RaggedTensor:
        """Token strings for integer ids (any shape, dense or ragged).

        Ids outside the vocabulary give `[UNK]`.
        """
        if isinstance(ids, tf.RaggedTensor):
            return ids.with_flat_values(self.id_to_token(ids.flat_values))
        ids = tf.convert_to_tensor(ids)
        if not ids.dtype.is_integer:
            raise ValueError(f"Expected integer ids. Received: dtype={ids.dtype.name}")
        ids = tf.cast(ids, tf.int64)
        valid = (ids >= 0) & (ids < self.vocab_size)
        return tf.gather(self._vocab_tensor, tf.where(valid, ids, tf.constant(UNK_ID, tf.int64)))

    def detokenize(self, ids: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
        """Text for a batch of id sequences, (batch_size, T) dense or ragged.

        Special tokens (ids below 4: padding, `[UNK]`, `[START]`, `[END]`) are
        dropped. Returns a string tensor (batch_size,); an empty row gives "".
        """
        ids = id_batch(ids)
        ids = tf.ragged.boolean_mask(ids, ids >= NUM_RESERVED)
        return self._join(self.id_to_token(ids))

    def _join(self, tokens: tf.RaggedTensor) -> tf.Tensor:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """A JSON-able dict that `from_config` (and `tokenizer_from_config`) accepts."""
        return {"kind": self.kind, "vocab": self.vocab, "lowercase": self.lowercase}

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        """Builds from `get_config()`'s dict, or one naming a `vocab_file` instead of `vocab`."""
        config = dict(config)
        kind = config.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"{cls.__name__} expects kind={cls.kind!r}. Received: kind={kind!r}")
        if "vocab_file" in config:
            if "vocab" in config:
                raise ValueError("Give either `vocab` or `vocab_file`, not both.")
            config["vocab"] = read_vocab_file(config.pop("vocab_file"))
        return cls(**config)

    def save(self, directory: str) -> str:
        """Writes `vocab.txt` (one token a line, UTF-8) and `tokenizer.json` to `directory`.

        Returns the path of `vocab.txt`.
        """
        os.makedirs(directory, exist_ok=True)
        vocab_path = os.path.join(directory, VOCAB_FILENAME)
        with open(vocab_path, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(token + "\n" for token in self._vocab)
        config = {"kind": self.kind, "vocab_file": VOCAB_FILENAME, "lowercase": self.lowercase}
        with open(os.path.join(directory, CONFIG_FILENAME), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
        return vocab_path

    @classmethod
    def load(cls, directory: str):
        """Reads what `save` wrote (`tokenizer.json` is optional: lowercase=True without it)."""
        config_path = os.path.join(directory, CONFIG_FILENAME)
        config = {"kind": cls.kind, "lowercase": True}
        if os.path.exists(config_path):
            with open(config_path, encoding="utf-8") as f:
                config.update(json.load(f))
        config["vocab_file"] = os.path.join(directory, config.get("vocab_file", VOCAB_FILENAME))
        return cls.from_config(config)


def read_vocab_file(path: str) -> list[str]:
    """Tokens of a `vocab.txt`, one a line."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.rstrip("\n")]
