"""The translation task: recipe -> data -> tokenizers -> Seq2Seq -> fit -> metrics -> export.

Bahdanau et al. (2015) and Luong et al. (2015) style neural machine
translation. Everything a user runs (`zoo run recipes/translation.yaml`)
goes through `run`; the pieces are public so tests and notebooks can call
them one at a time.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any

import numpy as np
import tensorflow as tf

from zoo.data.seq2seq_dataset import END_ID, START_ID, pad_batch
from zoo.models import Seq2Seq
from zoo.samplers import search
from zoo.tasks.seq2seq_training import (  # noqa: F401  (public names of this task)
    build_model,
    check_export_target,
    compile_model,
    decode_corpus,
    discard_stale_backup,
    finish_run,
    fit,
    make_datasets,
    make_optimizer,
    start_run,
    tokenize_all,
    train_seq2seq,
)
from zoo.text.normalization import normalize_python
from zoo.text.word_tokenizer import WordTokenizer
from zoo.text.wordpiece_tokenizer import WordPieceTokenizer

TASK = "translation"


@dataclasses.dataclass
class Pair:
    """One sentence pair; `alignment` holds gold (source_word, target_word) links when known."""

    source: str
    target: str
    alignment: tuple[tuple[int, int], ...] | None = None


@dataclasses.dataclass
class Splits:
    train: list[Pair]
    validation: list[Pair]
    test: list[Pair]
    report: str = ""


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


def read_examples(data: dict) -> tuple[list[Pair], str]:
    """Every pair of a `tsv` or `parallel` data section, unsplit (what `zoo evaluate --data` scores)."""
    pairs, report = _read_files(data)
    return pairs, report.summary()


# --- tokenizers -----------------------------------------------------------------------------
def build_tokenizer(texts: list[str], config: dict):
    cls = WordPieceTokenizer if config["kind"] == "wordpiece" else WordTokenizer
    kwargs = {"lowercase": config["lowercase"]}
    if config["kind"] == "wordpiece":
        kwargs["lower_thresh"] = config["lower_thresh"]
    return cls.build(texts, config["vocab_size"], **kwargs)


# --- the in-graph translator (used for evaluation AND exported) -----------------------------
class Translator(tf.Module):
    """Strings in, translations out: tokenizers, encoder, sampler and detokenizer in one graph.

    Its `translate` function is what the SavedModel serves; evaluation calls
    the very same function, so the figures describe the exported model.
    """

    def __init__(self, model: Seq2Seq, source_tokenizer, target_tokenizer, recipe: dict):
        super().__init__(name="translator")
        self.model = model
        self.source_tokenizer = source_tokenizer
        self.target_tokenizer = target_tokenizer
        self.reverse_source = bool(recipe["model"]["reverse_source"])
        decode = recipe["decode"]
        self.beam_size = int(decode["beam_size"])
        self.length_penalty = float(decode["length_penalty"])
        self.max_length = int(decode["max_length"])

    def encode_text(self, text: tf.Tensor):
        """Strings -> padded source ids (with [END]), their lengths, and source pieces."""
        ids = tf.cast(self.source_tokenizer.tokenize(text), tf.int32)
        word_count = ids.row_lengths()
        pieces = self.source_tokenizer.id_to_token(ids)
        end = tf.fill([tf.shape(text)[0], 1], tf.constant(END_ID, tf.int32))
        ids = tf.concat([ids, tf.RaggedTensor.from_tensor(end)], axis=1)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        dense = ids.to_tensor(0)
        # At least 2 positions: a zero-length time axis crashes the encoder RNN.
        dense = tf.pad(dense, [[0, 0], [0, tf.maximum(0, 2 - tf.shape(dense)[1])]])
        if self.reverse_source:
            dense = tf.reverse_sequence(dense, lengths - 1, seq_axis=1, batch_axis=0)
        return dense, lengths, pieces, word_count

    def decoding_limits(self, word_count, max_length) -> tuple[Any, dict]:
        """The samplers' `max_length` and extra arguments (a task's decoding hook); none here."""
        return max_length, {}

    def decode_ids(self, source, beam_size: int, max_length, **hooks) -> dict:
        memory = self.model.encode(source, training=False)
        state = self.model.initial_state(memory)
        common = dict(
            batch_size=tf.shape(source)[0],
            start_id=START_ID,
            end_id=END_ID,
            max_length=max_length,
            **hooks,
        )
        return search(
            self.model.step,
            state,
            memory,
            beam_size=beam_size,
            length_penalty=self.length_penalty,
            **common,
        )

    def translate_text(self, text, beam_size: int | None = None, max_length=None) -> dict:
        # Serving clients may send anything: at least one beam and one step.
        beam_size = self.beam_size if beam_size is None else tf.maximum(beam_size, 1)
        max_length = self.max_length if max_length is None else tf.maximum(max_length, 1)
        text = tf.reshape(tf.convert_to_tensor(text, tf.string), [-1])
        source, source_lengths, source_pieces, word_count = self.encode_text(text)
        max_length, hooks = self.decoding_limits(word_count, max_length)
        result = self.decode_ids(source, beam_size, max_length, **hooks)
        has_words = word_count > 0
        lengths = tf.where(has_words, tf.cast(result["lengths"], tf.int32), 0)
        width = tf.reduce_max(tf.concat([lengths, [0]], 0))
        tokens = tf.RaggedTensor.from_tensor(
            tf.cast(result["tokens"][:, :width], tf.int32), lengths=lengths
        )
        # Documented result: an empty (or all-whitespace) input translates to "".
        translation = tf.where(has_words, self.target_tokenizer.detokenize(tokens), "")
        attention = tf.cast(result["attention"][:, :width], tf.float32)
        if self.reverse_source:  # report attention over the source in reading order
            attention = tf.reverse_sequence(attention, source_lengths - 1, seq_axis=2, batch_axis=0)
        attention = attention[:, :, : tf.shape(source_pieces.to_tensor(""))[1] + 1]
        zero_if_empty = tf.cast(has_words, tf.float32)
        return {
            "translation": translation,
            "tokens": self.target_tokenizer.id_to_token(tokens).to_tensor(""),
            "source_tokens": tf.concat(
                [
                    source_pieces,
                    tf.RaggedTensor.from_tensor(tf.fill([tf.shape(text)[0], 1], "[END]")),
                ],
                1,
            ).to_tensor(""),
            "attention": attention * zero_if_empty[:, None, None],
            "score": tf.cast(result["scores"], tf.float32) * zero_if_empty,
            "length": lengths,
        }


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
    model, translator, pairs: list[Pair], evaluate_config: dict, translate_fn=None
) -> dict:
    """Real decoding of `pairs`: sacreBLEU, chrF, BLEU by source length, and AER if gold links exist."""
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
    # The model writes normalised text (see zoo.text.normalization: case
    # folded when the tokenizer lower-cases, accents stripped, punctuation
    # split); score it against references normalised the same way, or BLEU
    # would count every capital and accent as an error.
    lowercase = translator.target_tokenizer.lowercase
    references = [normalize_python(p.target, lowercase=lowercase) for p in pairs]
    sources = [p.source for p in pairs]
    metrics: dict[str, Any] = {
        "examples": len(pairs),
        "bleu": corpus_bleu(hypotheses, references),
        "chrf": corpus_chrf(hypotheses, references),
        "bleu_by_length": bleu_by_length(
            sources, hypotheses, references, tuple(evaluate_config["length_buckets"])
        ),
        "decode_seconds": round(decode_seconds, 2),
        "sentences_per_second": round(len(pairs) / max(decode_seconds, 1e-9), 1),
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


# --- the whole run --------------------------------------------------------------------------
def run(recipe: dict, *, log=print, callbacks: list | tuple = ()) -> dict:
    """Trains, evaluates and exports what `recipe` describes. Returns paths and metrics.

    Training resumes from `runs/<name>/backup` when an earlier run of the
    same recipe name was interrupted; `callbacks` are added to `fit`'s.
    """
    from zoo.export import export_translation

    run_dir, started = start_run(recipe, log)

    splits = load_splits(recipe["data"])
    log(f"data: {splits.report}")
    log(
        f"data: {len(splits.train)} train, {len(splits.validation)} validation, {len(splits.test)} test pairs"
    )

    t0 = time.time()
    source_tokenizer = build_tokenizer([p.source for p in splits.train], recipe["tokenizer"])
    target_tokenizer = build_tokenizer([p.target for p in splits.train], recipe["tokenizer"])
    log(
        f"tokenizer: {recipe['tokenizer']['kind']}, source vocabulary {source_tokenizer.vocab_size}, "
        f"target vocabulary {target_tokenizer.vocab_size} ({time.time() - t0:.1f} s)"
    )

    texts = {
        split: (
            [p.source for p in getattr(splits, split)],
            [p.target for p in getattr(splits, split)],
        )
        for split in ("train", "validation")
    }
    model, training = train_seq2seq(
        recipe,
        source_tokenizer,
        target_tokenizer,
        texts,
        run_dir,
        log=log,
        callbacks=callbacks,
        max_source_tokens=recipe["data"]["max_source_tokens"],
    )

    translator = Translator(model, source_tokenizer, target_tokenizer, recipe)
    translate_fn = tf.function(translator.translate_text, autograph=False, reduce_retracing=True)
    metrics = evaluate(
        model, translator, splits.test, recipe["evaluate"], translate_fn=translate_fn
    )
    metrics.update(training)
    log(format_metrics(metrics))

    return finish_run(
        recipe,
        metrics,
        lambda: export_translation(translator, recipe, metrics),
        run_dir,
        started,
        log,
    )


def format_metrics(metrics: dict) -> str:
    lines = [
        f"test: sacreBLEU {metrics['bleu']:.2f}, chrF {metrics['chrf']:.2f} on {metrics['examples']} sentences"
    ]
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
