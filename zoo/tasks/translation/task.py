"""The translation task: sentence pairs, a `Seq2Seq`, the in-graph `Translator`, sacreBLEU.

Bahdanau et al. (2015) and Luong et al. (2015) style neural machine
translation. `zoo run recipes/translation.yaml` takes `TranslationTask`
through `zoo.runner`; the pieces are public so tests and notebooks can call
them one at a time.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.config import FinetuneKeys
from zoo.data.seq2seq_dataset import START_ID, pad_batch
from zoo.models import Seq2Seq
from zoo.tasks.base import Input, Signature, Splits, traced
from zoo.tasks.decoding import DECODE_OPTIONS
from zoo.tasks.seq2seq.serving import Seq2SeqServing
from zoo.tasks.seq2seq.task import Seq2SeqTask
from zoo.tasks.seq2seq.training import tokenize_all
from zoo.tasks.translation.schema import TRANSLATION_SCHEMA
from zoo.tasks.truncation import cut_lines
from zoo.text.normalization import normalize_python
from zoo.text.sentencepiece_tokenizer import SentencePieceTokenizer
from zoo.text.word_tokenizer import WordTokenizer
from zoo.text.wordpiece_tokenizer import WordPieceTokenizer
from zoo.training import decode_corpus


@dataclasses.dataclass
class Pair:
    """One sentence pair; `alignment` holds gold (source_word, target_word) links when known."""

    source: str
    target: str
    alignment: tuple[tuple[int, int], ...] | None = None


# --- data -----------------------------------------------------------------------------------
def load_splits(data: dict) -> Splits:
    """Reads or generates the pairs a recipe's `data` section names, and splits them."""
    kind = data["kind"]
    n_eval = data["validation_size"] + data["test_size"]
    if kind == "synthetic":
        from zoo.data.synthetic_translation import generate_translation_pairs, split_examples

        examples = generate_translation_pairs(
            data["size"] + n_eval,
            seed=data["seed"],
            min_words=data["min_words"],
            max_words=data["max_words"],
            vocabulary_seed=data["vocabulary_seed"],
        )
        train, validation, test = split_examples(
            examples, data["validation_size"], data["test_size"], seed=data["seed"]
        )
        as_pairs = lambda xs: [Pair(x.source, x.target, tuple(x.alignment)) for x in xs]  # noqa: E731
        report = f"synthetic grammar: {len(examples)} pairs generated (seed {data['seed']})"
        return Splits(as_pairs(train), as_pairs(validation), as_pairs(test), report)

    from zoo.data.translation_readers import DataFormatError

    pairs, read_report = _read_files(data)
    random.Random(data["seed"]).shuffle(pairs)
    if len(pairs) < n_eval + 1:
        raise DataFormatError(
            f"{read_report.path}: {len(pairs)} usable pairs, but the recipe asks for "
            f"data.validation_size + data.test_size = {n_eval} held-out pairs plus training data"
        )
    # Held-out sources never appear in training (Tatoeba repeats sentences).
    test, validation = pairs[: data["test_size"]], pairs[data["test_size"] : n_eval]
    held_out = {p.source for p in test + validation}
    train = [p for p in pairs[n_eval:] if p.source not in held_out]
    if not train:
        raise DataFormatError(
            f"{read_report.path}: no training pair is left once the {n_eval} held-out sentences "
            "and their repetitions are set aside; lower data.validation_size / data.test_size"
        )
    return Splits(train, validation, test, read_report.summary())


def _read_files(data: dict):
    """The pairs of a `tsv` or `parallel` data section, in file order, and the reader's report."""
    from zoo.data.translation_readers import read_parallel_files, read_tsv_pairs

    if data["kind"] == "tsv":
        raw, report = read_tsv_pairs(
            data["path"],
            columns=tuple(data["columns"]),
            reverse=data["reverse"],
            max_pairs=data["max_pairs"],
        )
    else:
        raw, report = read_parallel_files(
            data["source_path"], data["target_path"], max_pairs=data["max_pairs"]
        )
    return [Pair(s, t) for s, t in raw], report


def read_files(data: dict) -> tuple[list[Pair], str]:
    """Every pair of a `tsv` or `parallel` data section, unsplit (what `zoo evaluate --data` scores)."""
    pairs, report = _read_files(data)
    return pairs, report.summary()


# --- tokenizers -----------------------------------------------------------------------------
def build_tokenizer(texts: list[str], config: dict):
    """A tokenizer of the kind `config` (a resolved recipe's `tokenizer` section) names.

    The recipe schema fills the defaults that depend on the data (SentencePiece
    on files, WordPiece on the synthetic grammar, and `lowercase`).
    """
    cls = {
        "sentencepiece": SentencePieceTokenizer,
        "wordpiece": WordPieceTokenizer,
        "word": WordTokenizer,
    }[config["kind"]]
    kwargs = {"lowercase": config["lowercase"]}
    if config["kind"] == "wordpiece":
        kwargs["lower_thresh"] = config["lower_thresh"]
    return cls.build(texts, config["vocab_size"], **kwargs)


# --- the in-graph translator (used for evaluation AND exported) -----------------------------
class Translator(Seq2SeqServing):
    """Strings in, translations out: tokenizers, encoder, sampler and detokenizer in one graph.

    Its `translate_text` is what the SavedModel serves as `translate`;
    evaluation calls the very same function, so the figures describe the
    exported model.
    """

    def __init__(self, model: Seq2Seq, source_tokenizer, target_tokenizer, recipe: dict):
        super().__init__(model, source_tokenizer, target_tokenizer, recipe, name="translator")

    def translate_text(self, text, beam_size: int | None = None, max_length=None) -> dict:
        return self.generate(text, beam_size, max_length)


# --- evaluation -----------------------------------------------------------------------------
def translate_corpus(
    translate_fn, sources: list[str], batch_size: int = 64, progress: bool = True
) -> list[dict]:
    """Translates a list of sentences in batches; returns one dict of NumPy values per sentence."""
    return decode_corpus(translate_fn, sources, batch_size, progress)


def teacher_forced_attention(
    model, translator, pairs: list[Pair], batch_size: int = 64
) -> list[np.ndarray]:
    """Attention while the model reads the REFERENCE translation, in source reading order.

    One matrix per pair, `(target pieces + [END], source pieces + [END])`.
    Alignment quality is measured on forced decoding, as is usual for AER, so
    that a wrong translation does not hide a right alignment.
    """
    forward = tf.function(
        lambda s, t: model.forward_with_attention(s, t, training=False)[1], reduce_retracing=True
    )
    out = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i : i + batch_size]
        source, source_lengths, _, _ = translator.encode_text(
            tf.constant([p.source for p in chunk])
        )
        target_ids = tokenize_all(translator.target_tokenizer, [p.target for p in chunk])
        target_in = pad_batch([[START_ID, *t] for t in target_ids])
        attention = forward(source, tf.constant(target_in)).numpy().astype(np.float32)
        for j, pair_target in enumerate(target_ids):
            length = int(source_lengths[j])
            weights = attention[j, : len(pair_target) + 1, :length]
            if translator.reverse_source:
                weights = np.concatenate(
                    [weights[:, : length - 1][:, ::-1], weights[:, length - 1 :]], 1
                )
            out.append(weights)
    return out


def pieces_with_end(tokenizer, texts: list[str]) -> list[list[str]]:
    """Each text's subword strings, then "[END]" (the rows/columns of the attention)."""
    ids = tokenizer.tokenize(tf.constant(texts))
    return [
        [p.decode("utf-8") for p in row] + ["[END]"] for row in tokenizer.id_to_token(ids).to_list()
    ]


def evaluate(
    model,
    translator,
    pairs: list[Pair],
    evaluate_config: dict,
    translate_fn=None,
    *,
    max_source_tokens: int | None = None,
    max_length: int | None = None,
) -> dict:
    """Real decoding of `pairs`: sacreBLEU, chrF, BLEU by source length, and AER if gold links exist.

    Every pair is scored, however long: `over_long` counts the sources longer
    than `max_source_tokens` (the limit training drops pairs by), `cut` the
    translations that hit `max_length` (the decoding's, for the log) before
    their end token.
    """
    from zoo.metrics.alignment import (
        alignment_error_rate,
        attention_to_alignment,
        word_ids_from_wordpieces,
    )
    from zoo.metrics.bleu import bleu_by_length, corpus_bleu, corpus_chrf

    if evaluate_config.get("max_examples"):
        pairs = pairs[: evaluate_config["max_examples"]]
    translate_fn = translate_fn or translator.translate_text
    started = time.time()
    results = translate_corpus(translate_fn, [p.source for p in pairs])
    decode_seconds = time.time() - started
    hypotheses = [r["translation"].decode("utf-8") for r in results]
    # As papers report: the model's detokenised text against the raw
    # references, with sacreBLEU's own tokenisation. A word-level or WordPiece
    # model writes lower-cased, accent-stripped text and pays for it here; the
    # normalised score beside it (both sides through `normalize_python`) shows
    # how much of the gap is case, accents and spacing.
    references = [p.target for p in pairs]
    sources = [p.source for p in pairs]
    normalized = [normalize_python(h) for h in hypotheses]
    normalized_refs = [normalize_python(r) for r in references]
    metrics: dict[str, Any] = {
        "examples": len(pairs),
        "bleu": corpus_bleu(hypotheses, references),
        "chrf": corpus_chrf(hypotheses, references),
        "bleu_normalized": corpus_bleu(normalized, normalized_refs),
        "chrf_normalized": corpus_chrf(normalized, normalized_refs),
        "bleu_by_length": bleu_by_length(
            sources, hypotheses, references, tuple(evaluate_config["length_buckets"])
        ),
        "decode_seconds": round(decode_seconds, 2),
        "sentences_per_second": round(len(pairs) / max(decode_seconds, 1e-9), 1),
        **length_limits(results, max_source_tokens, max_length),
    }
    if evaluate_config.get("alignment") and pairs and pairs[0].alignment is not None:
        predicted, gold = [], []
        attentions = teacher_forced_attention(model, translator, pairs)
        all_src = pieces_with_end(translator.source_tokenizer, [p.source for p in pairs])
        all_tgt = pieces_with_end(translator.target_tokenizer, [p.target for p in pairs])
        for pair, weights, src_pieces, tgt_pieces in zip(
            pairs, attentions, all_src, all_tgt, strict=True
        ):
            predicted.append(
                attention_to_alignment(
                    weights[: len(tgt_pieces), : len(src_pieces)],
                    word_ids_from_wordpieces(src_pieces),
                    word_ids_from_wordpieces(tgt_pieces),
                )
            )
            gold.append(set(map(tuple, pair.alignment)))
        metrics["alignment_error_rate"] = alignment_error_rate(predicted, gold)
    metrics["samples"] = [
        {"source": s, "reference": r, "translation": h}
        for s, r, h in list(zip(sources, references, hypotheses, strict=True))[:5]
    ]
    return metrics


def length_limits(results: list[dict], max_source_tokens: int | None, max_length: int | None):
    """`over_long` (sources past training's limit) and `cut` (outputs that hit max_length).

    Read from the decoded outputs: `source_tokens` (the pieces, then
    ``[END]``) and `truncated`; outputs without them count nothing.
    """
    over_long = 0
    if max_source_tokens:
        over_long = sum(
            sum(1 for t in r["source_tokens"] if t) - 1 > max_source_tokens
            for r in results
            if "source_tokens" in r
        )
    return {
        "over_long": over_long,
        "max_source_tokens": max_source_tokens,
        "cut": sum(bool(r.get("truncated", False)) for r in results),
        "max_length": max_length,
    }


def format_metrics(metrics: dict) -> str:
    lines = [
        f"test: sacreBLEU {metrics['bleu']:.2f}, chrF {metrics['chrf']:.2f} on "
        f"{metrics['examples']} sentences (detokenised output against the raw references)"
    ]
    lines += cut_lines(
        metrics.get("over_long", 0),
        f"sources longer than {metrics.get('max_source_tokens')} tokens "
        "(data.max_source_tokens; training drops such pairs) were decoded and scored",
        metrics.get("cut", 0),
        f"translations hit decode.max_length ({metrics.get('max_length')}) before their end "
        "token and were scored cut",
    )
    if "bleu_normalized" in metrics:
        lines.append(
            f"test: normalised (lower-cased, accents stripped, punctuation split): "
            f"sacreBLEU {metrics['bleu_normalized']:.2f}, chrF {metrics['chrf_normalized']:.2f}"
        )
    if "alignment_error_rate" in metrics:
        lines.append(f"test: attention alignment error rate {metrics['alignment_error_rate']:.3f}")
    buckets = ", ".join(
        f"{b['bucket']}: {b['bleu']:.1f} ({b['count']})"
        for b in metrics["bleu_by_length"]
        if b["count"]
    )
    lines.append(f"test: BLEU by source length: {buckets}")
    for sample in metrics.get("samples", [])[:3]:
        lines.append(
            f"  src: {sample['source']}\n  ref: {sample['reference']}\n  hyp: {sample['translation']}"
        )
    return "\n".join(lines)


class TranslationTask(Seq2SeqTask):
    """Sentence pairs -> a `Seq2Seq` -> `translate(text)`, scored by sacreBLEU and chrF."""

    schema = TRANSLATION_SCHEMA

    data_formats = ("tsv", "parallel")
    example_noun = "pairs"
    signatures = (Signature("translate", "translate_text", (Input("text"),), DECODE_OPTIONS),)
    finetune_policy = dataclasses.replace(
        Seq2SeqTask.finetune_policy,
        keys=FinetuneKeys(
            free_model_keys=frozenset({"dropout"}),
            same_kind_data_keys=("columns", "reverse"),
            new_data_keys=("kind", "path", "source_path", "target_path"),
        ),
    )

    def load_splits(self, data):
        return load_splits(data)

    def read_files(self, data):
        return read_files(data)

    def data_section(self, paths, kind, command):
        kind = kind or ("parallel" if len(paths) == 2 else "tsv")
        if kind == "parallel":
            if len(paths) != 2:
                raise ValueError(
                    "--format parallel takes two files: --data SOURCES.txt --data TARGETS.txt"
                )
            return {"kind": kind, "source_path": paths[0], "target_path": paths[1]}
        return super().data_section(paths, kind, command)

    def pairs(self, examples):
        return [(p.source, p.target) for p in examples]

    def max_source_tokens(self, recipe):
        return recipe["data"]["max_source_tokens"]

    def build_tokenizers(self, train, recipe, log):
        """Tokenizers built on the training pairs that training keeps (`max_source_tokens`).

        A source's token count needs a vocabulary, so: every word is at least
        one token, and a source of more words than the limit is left out
        first (one huge line would otherwise fill the vocabulary with its
        words); the vocabulary built on the rest counts their tokens, and if
        it finds more over-long sources, it is built once more without them.
        """
        t0 = time.time()
        config = recipe["tokenizer"]
        kept = self.within_source_limit(
            train, recipe, lambda texts: [len(t.split()) for t in texts]
        )
        source = build_tokenizer([p.source for p in kept], config)
        exact = self.within_source_limit(
            kept, recipe, lambda texts: [len(ids) for ids in tokenize_all(source, texts)]
        )
        if len(exact) < len(kept):
            kept = exact
            source = build_tokenizer([p.source for p in kept], config)
        target = build_tokenizer([p.target for p in kept], config)
        left_out = ""
        if len(kept) < len(train):
            left_out = (
                f"; built on {len(kept)} of {len(train)} training pairs: "
                f"{len(train) - len(kept)} with a source longer than "
                f"{self.max_source_tokens(recipe)} tokens left out, as training drops them"
            )
        log(
            f"tokenizer: {config['kind']}, "
            f"source vocabulary {source.vocab_size}, "
            f"target vocabulary {target.vocab_size} ({time.time() - t0:.1f} s){left_out}"
        )
        return {"source": source, "target": target}

    def serving_module(self, model, tokenizers, recipe):
        return Translator(model, tokenizers["source"], tokenizers["target"], recipe)

    def evaluate(self, model, serving, examples, recipe, *, final=False):
        fn = traced(serving, "translate_text")
        return evaluate(
            model,
            serving,
            examples,
            recipe["evaluate"],
            translate_fn=fn,
            max_source_tokens=self.max_source_tokens(recipe),
            max_length=recipe["decode"]["max_length"],
        )

    def headline(self, metrics):
        return f"BLEU {metrics['bleu']:.2f}, chrF {metrics['chrf']:.2f}"

    def format_metrics(self, metrics):
        return format_metrics(metrics)

    def results(self, signature, items, outputs):
        from zoo.tasks.translation.results import TranslationResult

        return TranslationResult.from_outputs(items, outputs)
