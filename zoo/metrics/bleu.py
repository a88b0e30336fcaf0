"""Corpus BLEU and chrF with sacreBLEU, and BLEU by source-sentence length.

sacreBLEU is the reference implementation papers report, so the figures here
are comparable with published ones: scores are computed on detokenized text
with sacreBLEU's default ``13a`` tokenizer, one reference per sentence, on a
0-100 scale. `bleu_by_length` gives the curve of Bahdanau et al. (2015),
Figure 2: quality against source-sentence length.
"""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu

__all__ = ["bleu_by_length", "corpus_bleu", "corpus_chrf"]


def _check_corpus(hypotheses: Sequence[str], references: Sequence[str]) -> tuple[list, list]:
    hypotheses, references = list(hypotheses), list(references)
    if len(hypotheses) != len(references):
        raise ValueError(
            "Expected one reference per hypothesis. Received: "
            f"{len(hypotheses)} hypotheses and {len(references)} references"
        )
    if not hypotheses:
        raise ValueError("Expected at least one sentence. Received: an empty corpus")
    for name, sentences in (("hypotheses", hypotheses), ("references", references)):
        for index, sentence in enumerate(sentences):
            if not isinstance(sentence, str):
                raise TypeError(
                    f"Expected {name} as detokenized strings. "
                    f"Received: {name}[{index}]={sentence!r}"
                )
    return hypotheses, references


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-100) of detokenized hypotheses against one reference each.

    Args:
        hypotheses: system outputs, one string per sentence.
        references: the reference translations, aligned with ``hypotheses``.

    Returns:
        sacreBLEU's corpus score with its default settings (13a tokenizer,
        "exp" smoothing, brevity penalty).
    """
    hypotheses, references = _check_corpus(hypotheses, references)
    # force: the zoo scores normalised text, punctuation split off on both
    # sides, on purpose; sacreBLEU would warn of "tokenized periods" at every call.
    return float(sacrebleu.corpus_bleu(hypotheses, [references], force=True).score)


def corpus_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (0-100, sacreBLEU's chrF2: character 6-grams, beta 2)."""
    hypotheses, references = _check_corpus(hypotheses, references)
    return float(sacrebleu.corpus_chrf(hypotheses, [references]).score)


def _bucket_labels(boundaries: Sequence[int]) -> list[str]:
    labels, low = [], 1
    for high in boundaries:
        labels.append(f"{low}-{high}")
        low = high + 1
    labels.append(f"{low}+")
    return labels


def bleu_by_length(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str],
    boundaries: Sequence[int] = (10, 20, 30, 40, 50),
) -> list[dict]:
    """Corpus BLEU of each bucket of source-sentence length.

    A sentence of ``n`` source words (split on whitespace) falls in the first
    bucket whose upper boundary is ``>= n``; with the default boundaries the
    buckets are "1-10", "11-20", ..., "41-50", "51+". An empty source counts
    in the first bucket.

    Args:
        sources: the source sentences (their length picks the bucket).
        hypotheses: system outputs, aligned with ``sources``.
        references: one reference per sentence, aligned with ``sources``.
        boundaries: strictly increasing positive upper bounds of the buckets.

    Returns:
        One dict per bucket, in order: ``{"bucket": "11-20", "count": 42,
        "bleu": 27.3}``; a bucket with no sentence is kept with ``count`` 0
        and ``bleu`` None, so curves of several systems line up.
    """
    boundaries = list(boundaries)
    if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in boundaries) or any(
        a >= b for a, b in zip(boundaries, boundaries[1:], strict=False)
    ):
        raise ValueError(
            f"Expected strictly increasing positive integer boundaries. Received: "
            f"boundaries={boundaries}"
        )
    sources = list(sources)
    hypotheses, references = list(hypotheses), list(references)
    if not len(sources) == len(hypotheses) == len(references):
        raise ValueError(
            "Expected as many sources, hypotheses and references. Received: "
            f"{len(sources)} sources, {len(hypotheses)} hypotheses, "
            f"{len(references)} references"
        )
    members: list[list[int]] = [[] for _ in range(len(boundaries) + 1)]
    for index, source in enumerate(sources):
        length = len(source.split())
        bucket = next((i for i, high in enumerate(boundaries) if length <= high), len(boundaries))
        members[bucket].append(index)
    rows = []
    for label, indices in zip(_bucket_labels(boundaries), members, strict=True):
        bleu = None
        if indices:
            bleu = corpus_bleu([hypotheses[i] for i in indices], [references[i] for i in indices])
        rows.append({"bucket": label, "count": len(indices), "bleu": bleu})
    return rows
