"""How well attention weights align words: alignment error rate (AER).

The synthetic translation data knows which source word each target word
translates, so the attention itself can be scored, not only the output.
`attention_to_alignment` turns a subword attention matrix into word links
and `alignment_error_rate` compares links with gold ones (Och & Ney 2003).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "SPECIAL_PIECES",
    "alignment_error_rate",
    "attention_to_alignment",
    "word_ids_from_wordpieces",
]

Link = tuple[int, int]
"""An alignment link ``(source_word_index, target_word_index)``."""

SPECIAL_PIECES = frozenset({"[START]", "[END]", "[PAD]", ""})
"""Pieces that belong to no word (word id -1)."""


def alignment_error_rate(
    predicted: Sequence[Iterable[Link]],
    gold: Sequence[Iterable[Link]],
    possible: Sequence[Iterable[Link]] | None = None,
) -> float:
    """Corpus alignment error rate, Och & Ney (2003).

    ``AER = 1 - (|A & S| + |A & P|) / (|A| + |S|)`` with counts summed over
    the corpus (not averaged per sentence), where A are the predicted links,
    S the sure gold links and P the possible ones (S is always possible).
    With sure links only, P = S and AER = 1 - 2|A & S| / (|A| + |S|).

    Args:
        predicted: one set of ``(source_index, target_index)`` links per sentence.
        gold: the sure links, one set per sentence.
        possible: optional extra possible links per sentence.

    Returns:
        AER in [0, 1]; 0 for a perfect alignment, and 0 when there is no link
        at all on either side (nothing to disagree on).
    """
    if len(predicted) != len(gold) or (possible is not None and len(possible) != len(gold)):
        sizes = f"{len(predicted)} predicted, {len(gold)} gold"
        if possible is not None:
            sizes += f", {len(possible)} possible"
        raise ValueError(f"Expected one set of links per sentence. Received: {sizes}")
    agree_sure = agree_possible = total = 0
    for index, (links, sure) in enumerate(zip(predicted, gold, strict=True)):
        links, sure = set(links), set(sure)
        allowed = sure | (set(possible[index]) if possible is not None else set())
        agree_sure += len(links & sure)
        agree_possible += len(links & allowed)
        total += len(links) + len(sure)
    if total == 0:
        return 0.0
    return 1.0 - (agree_sure + agree_possible) / total


def attention_to_alignment(
    attention: np.ndarray,
    source_word_ids: Sequence[int],
    target_word_ids: Sequence[int],
) -> set[Link]:
    """Word alignment links read off a subword attention matrix.

    A word's weight is the sum of the weights on its source pieces, averaged
    over the pieces of the target word; each target word is linked to the
    source word of largest weight (the first one on ties). Pieces with word id
    -1 (start, end, padding) are ignored on both sides.

    Args:
        attention: weights of shape ``(target_tokens, source_tokens)``; a
            larger matrix (decoder padding) is trimmed to the id lists.
        source_word_ids: for each source token, its word index or -1.
        target_word_ids: for each target token, its word index or -1.

    Returns:
        A set of ``(source_word, target_word)`` links, one per target word
        (none when the source has no word).
    """
    attention = np.asarray(attention, dtype=np.float64)
    source_ids = np.asarray(source_word_ids, dtype=np.int64).reshape(-1)
    target_ids = np.asarray(target_word_ids, dtype=np.int64).reshape(-1)
    needed = (len(target_ids), len(source_ids))
    if attention.ndim != 2 or attention.shape[0] < needed[0] or attention.shape[1] < needed[1]:
        raise ValueError(
            "Expected attention of shape (target_tokens, source_tokens) at least "
            f"{needed} for {needed[0]} target and {needed[1]} source word ids. "
            f"Received: attention.shape={attention.shape}"
        )
    attention = attention[: needed[0], : needed[1]]
    source_words = np.unique(source_ids[source_ids >= 0])
    target_words = np.unique(target_ids[target_ids >= 0])
    if len(source_words) == 0:
        return set()
    # (source_tokens, source_words) one-hot: sums each word's pieces.
    source_onehot = (source_ids[:, None] == source_words[None, :]).astype(np.float64)
    per_token = attention @ source_onehot  # (target_tokens, source_words)
    links = set()
    for word in target_words:
        weights = per_token[target_ids == word].mean(axis=0)
        links.add((int(source_words[int(np.argmax(weights))]), int(word)))
    return links


SENTENCEPIECE_MARK = "\u2581"  # "▁", SentencePiece's mark of a word start


def word_ids_from_wordpieces(pieces: Sequence[str | bytes]) -> list[int]:
    """The word index of each WordPiece (or SentencePiece) token; -1 for special tokens.

    A piece starting with ``##`` continues the previous word; '[START]',
    '[END]', '[PAD]' and '' belong to no word. A ``##`` piece with no word
    before it starts a new word. SentencePiece pieces (when any piece starts
    with the word mark ``▁``) work the other way round: a piece starts a word
    when it starts with ``▁`` and continues the previous word otherwise.
    Bytes (as tensorflow-text returns) are decoded as UTF-8.

    Example:
        >>> word_ids_from_wordpieces(["[START]", "the", "hou", "##se", "[END]"])
        [-1, 0, 1, 1, -1]
        >>> word_ids_from_wordpieces(["▁the", "▁hou", "se", "[END]"])
        [0, 1, 1, -1]
    """
    pieces = [p.decode("utf-8") if isinstance(p, bytes) else p for p in pieces]
    sentencepiece = any(p.startswith(SENTENCEPIECE_MARK) for p in pieces)
    ids, word, previous = [], -1, -1
    for piece in pieces:
        if piece in SPECIAL_PIECES:
            ids.append(-1)
            previous = -1
            continue
        continues = (
            not piece.startswith(SENTENCEPIECE_MARK) if sentencepiece else piece.startswith("##")
        )
        if not (continues and previous >= 0):
            word += 1
        ids.append(word)
        previous = word
    return ids
