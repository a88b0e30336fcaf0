"""The parsing task: sentences -> linearised trees with the translation machinery.

Grammar as a Foreign Language (Vinyals et al. 2015): a constituency tree is
written depth first as symbols, ``(S (NP XX XX )NP (VP XX )VP XX )S``, one
``XX`` per word, and an attention encoder-decoder learns to translate the
(reversed) sentence into it. Decoding is constrained by
`zoo.samplers.TreeConstraint`, so every output is a well-formed tree over
exactly the input words; the paper's repair of unconstrained output is
measured too. Scores are EVALB's (COLLINS.prm) labelled bracket F1.

`zoo run recipes/parsing.yaml` takes `ParsingTask` through `zoo.runner`;
the pieces are public.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Any

import tensorflow as tf

from zoo.config import FinetuneKeys
from zoo.data.synthetic_parsing import ParseExample, generate_parse_examples
from zoo.data.treebank import delinearize, is_well_formed, read_clean_treebank, repair_linearized
from zoo.samplers import TreeConstraint
from zoo.tasks.base import Input, Signature, Splits, traced
from zoo.tasks.decoding import DECODE_OPTIONS
from zoo.tasks.parsing.schema import PARSING_SCHEMA
from zoo.tasks.seq2seq.serving import Seq2SeqServing
from zoo.tasks.seq2seq.task import Seq2SeqTask
from zoo.tasks.truncation import cut_lines
from zoo.text.symbol_tokenizer import SymbolTokenizer
from zoo.training import decode_corpus

PLACEHOLDER = "XX"
# Added to length_per_word * n_words: room for the root and the brackets of
# very short sentences.
LENGTH_SLACK = 8


# --- data -----------------------------------------------------------------------------------
def _split_by_sentence(
    examples: list[ParseExample], validation_size: int, test_size: int, seed: int
) -> tuple[list, list, list]:
    """Held-out sentences drawn at random; no held-out sentence appears in training."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held_out: dict[str, int] = {}
    for index in order:
        if len(held_out) == validation_size + test_size:
            break
        held_out.setdefault(examples[index].sentence, index)
    picked = list(held_out.values())
    validation = [examples[i] for i in picked[:validation_size]]
    test = [examples[i] for i in picked[validation_size:]]
    train = [e for e in examples if e.sentence not in held_out]
    return train, validation, test


def load_splits(data: dict) -> Splits:
    """The recipe's trees: generated from the synthetic grammar, or read from a treebank."""
    if data["kind"] == "synthetic":
        examples = generate_parse_examples(
            data["size"] + data["validation_size"] + data["test_size"],
            seed=data["seed"],
            min_words=data["min_words"],
            max_words=data["max_words"],
        )
        train, validation, test = _split_by_sentence(
            examples, data["validation_size"], data["test_size"], data["seed"]
        )
        report = f"synthetic grammar: {len(examples)} trees generated (seed {data['seed']})"
        return Splits(train, validation, test, report)

    from zoo.data.translation_readers import DataFormatError
    from zoo.data.treebank import split_by_file

    by_file, read_report = read_clean_treebank(data["path"], pattern=data["pattern"])
    try:
        train_trees, validation_trees, test_trees = split_by_file(
            by_file, data["validation_files"], data["test_files"]
        )
    except ValueError as error:
        raise DataFormatError(f"data.validation_files / data.test_files: {error}") from None
    train = [ParseExample(tree) for tree in train_trees]
    validation = [ParseExample(tree) for tree in validation_trees]
    test = [ParseExample(tree) for tree in test_trees]
    if not data["validation_files"]:
        # No validation files named: 5% of the training trees, drawn with the seed.
        random.Random(data["seed"]).shuffle(train)
        cut = max(1, len(train) // 20)
        validation, train = train[:cut], train[cut:]
    if data["train_size"] is not None and data["train_size"] < len(train):
        # One shuffle whatever the size: a smaller size's trees are a subset of a larger's.
        random.Random(data["seed"]).shuffle(train)
        train = train[: data["train_size"]]
    if not train or not validation or not test:
        sizes = f"{len(train)} train, {len(validation)} validation, {len(test)} test"
        raise DataFormatError(
            f"data.path: {data['path']}: a split has no tree ({sizes}); "
            "check data.validation_files and data.test_files"
        )
    report = read_report.summary()
    if data["train_size"] is not None:
        report += f"; training on {len(train)} of them (data.train_size)"
    return Splits(train, validation, test, report)


def read_files(data: dict) -> tuple[list[ParseExample], str]:
    """Every tree of a treebank data section, unsplit (what `zoo evaluate --data` scores)."""
    by_file, report = read_clean_treebank(data["path"], pattern=data["pattern"])
    examples = [ParseExample(tree) for trees in by_file.values() for tree in trees]
    return examples, report.summary()


# --- the in-graph parser (used for evaluation AND exported) ---------------------------------
def bracketed_trees(tokens: tf.Tensor, words: tf.RaggedTensor) -> tf.Tensor:
    """Linearised symbols and the sentence's words -> one bracketed tree string per row.

    ``["(S", "(NP", "XX", ")NP", "XX", ")S"]`` with words ``["dogs", "bark"]``
    gives ``"(S (NP dogs) bark)"``: the i-th ``XX`` is replaced by the i-th
    word, closing labels are dropped. Words containing a parenthesis are
    written ``-LRB-`` / ``-RRB-``, as the Penn Treebank does, so the string
    always reads back as a tree. Padding (``""``) is skipped.

    Args:
        tokens: string `(batch_size, T)`, padded with `""`.
        words: string `RaggedTensor` `(batch_size, None)`.
    """
    words = words.to_tensor("")
    words = tf.pad(words, [[0, 0], [0, 1]])  # never gather from an empty axis
    words = tf.strings.regex_replace(words, r"\(", "-LRB-")
    words = tf.strings.regex_replace(words, r"\)", "-RRB-")
    is_word = tf.equal(tokens, PLACEHOLDER)
    index = tf.maximum(tf.cumsum(tf.cast(is_word, tf.int32), axis=1) - 1, 0)
    index = tf.minimum(index, tf.shape(words)[1] - 1)
    word = tf.gather(words, index, batch_dims=1)
    opening = tf.strings.regex_full_match(tokens, r"\([^\s()]+")
    closing = tf.strings.regex_full_match(tokens, r"\)[^\s()]*")
    pieces = tf.where(
        is_word,
        " " + word,
        tf.where(opening, " " + tokens, tf.where(closing, ")", "")),
    )
    return tf.strings.strip(tf.strings.reduce_join(pieces, axis=1))


class Parser(Seq2SeqServing):
    """Sentences in, trees out: tokenizers, encoder, constrained sampler in one graph.

    A sentence is its words separated by white space (already tokenised, as
    in the Penn Treebank: ``"John has a dog ."``). With `constrained`, every
    output is a well-formed tree over exactly those words
    (`zoo.samplers.TreeConstraint`); a sentence of `n` words may use at most
    ``min(decode.max_length, decode.length_per_word * n + 8)`` symbols. An
    empty sentence gives the empty tree ``""`` and no symbols.

    A sentence whose tree cannot fit in `max_length` symbols (more than
    `max_length - 3` words) is parsed over its first
    ``(max_length - 8) / length_per_word`` words (the budget those words
    would have; `max_length - 3` when that is none), and its other words
    are attached flat under the root, after the parsed ones; `parsed_words`
    says how many words the decoder's tree covers. With `max_length` below
    4 no tree fits at all: the tree is empty.
    """

    def __init__(self, model, source_tokenizer, target_tokenizer, recipe: dict, **overrides):
        super().__init__(model, source_tokenizer, target_tokenizer, recipe, name="parser")
        decode = {**recipe["decode"], **overrides}
        self.constrained = bool(decode["constrained"])
        self.length_per_word = float(decode["length_per_word"])
        self.max_length = int(decode["max_length"])
        self.constraint = TreeConstraint(target_tokenizer.vocab, pos_placeholder=PLACEHOLDER)

    def parsed_words(self, word_count, max_length):
        """How many words (from the first) the decoder parses: all those a tree can hold."""
        word_count = tf.cast(word_count, tf.int32)
        max_length = tf.cast(max_length, tf.int32)
        # Too many words for any tree: as many as get their usual room.
        room = tf.cast(
            tf.math.floor(tf.cast(max_length - LENGTH_SLACK, tf.float32) / self.length_per_word),
            tf.int32,
        )
        prefix = tf.maximum(tf.where(room >= 1, room, max_length - 3), 0)
        return tf.where(word_count + 3 <= max_length, word_count, tf.minimum(word_count, prefix))

    def decoding_limits(self, word_count, max_length, *, fixed=False):
        if self.constrained:
            word_count = self.parsed_words(word_count, max_length)
        budgets = tf.cast(
            tf.math.ceil(self.length_per_word * tf.cast(word_count, tf.float32)), tf.int32
        )
        budgets = tf.minimum(budgets + LENGTH_SLACK, max_length)
        longest = max_length if fixed else tf.reduce_max(tf.concat([budgets, [1]], 0))
        if not self.constrained:
            return longest, {}
        return longest, {
            "allowed_fn": self.constraint.allowed_fn,
            "hook_state": self.constraint.initial_state(word_count, budgets),
        }

    def length_bound(self, source_width):
        # Every sentence fits: its words and [END] are at most the padded width.
        words = tf.cast(source_width - 1, tf.float32)
        return tf.cast(tf.math.ceil(self.length_per_word * words), tf.int32) + LENGTH_SLACK

    def parse_text(self, sentence, beam_size=None, max_length=None) -> dict:
        sentence = tf.reshape(tf.convert_to_tensor(sentence, tf.string), [-1])
        out = self.generate(sentence, beam_size, max_length)
        words = tf.strings.split(sentence)
        end = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(sentence)[0], 1], "[END]"))
        tokens, attention, lengths = out["tokens"], out["attention"], out["length"]
        parsed = tf.reduce_sum(tf.cast(tf.equal(tokens, PLACEHOLDER), tf.int32), axis=1)
        linearized = out["translation"]
        if self.constrained:  # a tree over the first words: the others join the root
            missing = tf.where(lengths > 0, tf.cast(words.row_lengths(), tf.int32) - parsed, 0)
            tokens, attention, lengths = attach_flat(tokens, attention, lengths, missing)
            joined = tf.strings.reduce_join(
                tf.RaggedTensor.from_tensor(tokens, lengths=lengths), axis=1, separator=" "
            )
            linearized = tf.where(missing > 0, joined, linearized)
        return {
            "tree": bracketed_trees(tokens, words),
            "linearized": linearized,
            "tokens": tokens,
            "source_tokens": tf.concat([words, end], 1).to_tensor(""),
            "attention": attention,
            "score": out["score"],
            "length": lengths,
            "parsed_words": parsed,
            "truncated": out["truncated"],
        }


def attach_flat(tokens: tf.Tensor, attention: tf.Tensor, lengths: tf.Tensor, missing: tf.Tensor):
    """Adds `missing` placeholders to each tree, under its root, before the root closes.

    ``(S (NP XX )NP XX )S`` with 2 missing gives ``(S (NP XX )NP XX XX XX )S``:
    the words the decoder did not reach become children of the root. Their
    attention rows are zeros (no decoding step wrote them).

    Args:
        tokens: string `(batch_size, T)`, padded with `""`.
        attention: float `(batch_size, T, S)`.
        lengths: int32 `(batch_size,)`, the symbols of each row (0: no tree).
        missing: int32 `(batch_size,)`, placeholders to add (0 where `lengths` is 0).

    Returns:
        `(tokens, attention, lengths)`, `T` grown to the longest new row.
    """
    new_lengths = lengths + missing
    width = tf.reduce_max(tf.concat([new_lengths, [0]], 0))
    position = tf.range(width)[None, :]
    last = (lengths - 1)[:, None]  # the root's closing bracket
    inserted = (position >= last) & (position < last + missing[:, None])
    kept = (position < new_lengths[:, None]) & ~inserted
    source = tf.where(position < last, position, position - missing[:, None])
    source = tf.where(kept, source, 0)
    # One padding column, so an all-empty batch still has something to gather.
    tokens = tf.pad(tokens, [[0, 0], [0, 1]], constant_values="")
    attention = tf.pad(attention, [[0, 0], [0, 1], [0, 0]])
    new_tokens = tf.where(
        kept, tf.gather(tokens, source, batch_dims=1), tf.where(inserted, PLACEHOLDER, "")
    )
    new_attention = tf.where(
        kept[:, :, None], tf.gather(attention, source, batch_dims=1), tf.zeros([], attention.dtype)
    )
    return new_tokens, new_attention, new_lengths


def build_tokenizers(train: list[ParseExample], config: dict):
    """Exact-match words (the most frequent, seen `min_count` times) and every tree symbol.

    Words left out become `[UNK]`; with `min_count` 2 the training data has
    `[UNK]`s too, so the model learns what to do with a word it never saw.
    """
    source = SymbolTokenizer.build(
        [e.sentence for e in train], config["vocab_size"], min_count=config["min_count"]
    )
    target = SymbolTokenizer.build([e.linearized for e in train])
    return source, target


# --- evaluation -----------------------------------------------------------------------------
def score_parses(examples: list[ParseExample], symbol_rows: list[list[str]]) -> dict:
    """EVALB F1 of decoded symbols against the gold trees, repairing what is malformed.

    Returns the `evalb` figures (0-100), the share of outputs that were
    well-formed as decoded, and how many needed the repair of
    `zoo.data.treebank.repair_linearized`.
    """
    from zoo.metrics.evalb import evalb

    gold, predicted = [], []
    well_formed = 0
    for example, symbols in zip(examples, symbol_rows, strict=True):
        n_words = len(example.words)
        if is_well_formed(symbols, n_words, pos_placeholder=PLACEHOLDER):
            well_formed += 1
        else:
            symbols, _ = repair_linearized(symbols, n_words, pos_placeholder=PLACEHOLDER)
        predicted.append(delinearize(symbols, example.words, pos_placeholder=PLACEHOLDER))
        gold.append(example.tree)
    score = evalb(
        [t.to_bracketed() for t in gold],
        [t.to_bracketed() for t in predicted],
    )
    count = len(examples)
    return {
        "f1": score.f1,
        "precision": score.precision,
        "recall": score.recall,
        "exact_match": 100.0 * score.exact_match / max(score.valid_sentences, 1),
        "length_mismatch": score.length_mismatch,
        "well_formed": 100.0 * well_formed / max(count, 1),
        "repaired": count - well_formed,
    }


def _symbols(row) -> list[str]:
    return [t.decode("utf-8") for t in row if t]


def _cut(example: ParseExample, output: dict) -> bool:
    """Whether the decoder's own tree missed words of `example` (or hit max_length)."""
    if "parsed_words" in output:
        parsed = int(output["parsed_words"])
    else:
        parsed = _symbols(output["tokens"]).count(PLACEHOLDER)
    return parsed < len(example.words) or bool(output.get("truncated", False))


def evaluate(
    examples: list[ParseExample],
    parse_fn,
    evaluate_config: dict,
    unconstrained_fn=None,
    *,
    max_words: int | None = None,
    max_length: int | None = None,
) -> dict:
    """Real decoding of `examples` with the exported graph: F1, well-formed share, repairs.

    Every sentence is scored, however long: `over_long` counts those longer
    than `max_words` (the limit training drops trees by), `cut` those whose
    decoded tree does not cover every word (`max_length`, the decoding's, is
    for the log; the other words are attached flat, see `Parser`).
    """
    if evaluate_config.get("max_examples"):
        examples = examples[: evaluate_config["max_examples"]]
    sentences = [e.sentence for e in examples]
    started = time.time()
    results = decode_corpus(parse_fn, sentences)
    seconds = time.time() - started
    metrics: dict[str, Any] = {"examples": len(examples)}
    metrics.update(score_parses(examples, [_symbols(r["tokens"]) for r in results]))
    metrics["decode_seconds"] = round(seconds, 2)
    metrics["sentences_per_second"] = round(len(examples) / max(seconds, 1e-9), 1)
    metrics["over_long"] = sum(len(e.words) > max_words for e in examples) if max_words else 0
    metrics["max_words"] = max_words
    metrics["cut"] = sum(_cut(e, r) for e, r in zip(examples, results, strict=True))
    metrics["max_length"] = max_length
    if unconstrained_fn is not None:
        free = decode_corpus(unconstrained_fn, sentences)
        free_scores = score_parses(examples, [_symbols(r["tokens"]) for r in free])
        metrics["unconstrained"] = {
            "f1_after_repair": free_scores["f1"],
            "well_formed": free_scores["well_formed"],
            "repaired": free_scores["repaired"],
        }
    metrics["samples"] = [
        {"sentence": e.sentence, "gold": e.tree.to_bracketed(), "tree": r["tree"].decode("utf-8")}
        for e, r in list(zip(examples, results, strict=True))[:5]
    ]
    return metrics


def format_metrics(metrics: dict) -> str:
    lines = [
        f"test: labelled bracket F1 {metrics['f1']:.2f} (precision {metrics['precision']:.2f}, "
        f"recall {metrics['recall']:.2f}), exact match {metrics['exact_match']:.1f}% "
        f"on {metrics['examples']} sentences",
        f"test: well-formed {metrics['well_formed']:.1f}% as decoded, "
        f"{metrics['sentences_per_second']:.1f} sentences/s",
    ]
    lines += cut_lines(
        metrics.get("over_long", 0),
        f"sentences longer than {metrics.get('max_words')} words "
        "(data.max_train_words; training drops such trees) were decoded and scored",
        metrics.get("cut", 0),
        f"trees could not cover every word within decode.max_length "
        f"({metrics.get('max_length')}) symbols and were scored as returned (the words the "
        "decoder did not reach attached flat under the root)",
    )
    free = metrics.get("unconstrained")
    if free:
        lines.append(
            f"test: without the constraint: {free['well_formed']:.1f}% well-formed, "
            f"{free['repaired']} repaired, F1 {free['f1_after_repair']:.2f} after repair"
        )
    for sample in metrics.get("samples", [])[:2]:
        lines.append(f"  gold: {sample['gold']}\n  tree: {sample['tree']}")
    return "\n".join(lines)


class ParsingTask(Seq2SeqTask):
    """Sentences -> linearised trees with a `Seq2Seq` -> `parse(sentence)`, scored by EVALB F1."""

    schema = PARSING_SCHEMA
    data_formats = ("treebank",)
    example_noun = "trees"
    signatures = (Signature("parse", "parse_text", (Input("sentence"),), DECODE_OPTIONS),)
    finetune_policy = dataclasses.replace(
        Seq2SeqTask.finetune_policy,
        closed_vocabularies=("target",),
        keys=FinetuneKeys(free_model_keys=frozenset({"dropout"}), new_data_keys=("kind", "path")),
    )

    @property
    def user_errors(self):
        from zoo.data.treebank import TreebankFormatError

        return (TreebankFormatError,)

    def load_splits(self, data):
        return load_splits(data)

    def read_files(self, data):
        return read_files(data)

    def data_section(self, paths, kind, command):
        section = super().data_section(paths, kind, command)
        if command == "evaluate":
            # Every file is evaluation data (with --split test, `--set
            # data.test_files=...` chooses).
            section["test_files"] = ["*"]
        return section

    def pairs(self, examples):
        return [(e.sentence, e.linearized) for e in examples]

    def max_source_tokens(self, recipe):
        return recipe["data"]["max_train_words"]

    def decoder_args(self, recipe, tokenizers):
        args = super().decoder_args(recipe, tokenizers)
        if args.pop("pointer", False):  # the recipe's switch -> the XX id and the direction
            args["pointer_token"] = tokenizers["target"].vocab.index(PLACEHOLDER)
            args["pointer_reversed"] = recipe["model"]["reverse_source"]
        return args

    def build_tokenizers(self, train, recipe, log):
        """Tokenizers built on the trees that training keeps (`data.max_train_words`)."""
        # The source tokenizer splits on white space: its tokens are the words.
        kept = self.within_source_limit(
            train, recipe, lambda texts: [len(t.split()) for t in texts]
        )
        source, target = build_tokenizers(kept, recipe["tokenizer"])
        left_out = ""
        if len(kept) < len(train):
            left_out = (
                f"; built on {len(kept)} of {len(train)} training trees: "
                f"{len(train) - len(kept)} longer than {self.max_source_tokens(recipe)} words "
                "left out, as training drops them"
            )
        log(f"tokenizer: {source.vocab_size} words, {target.vocab_size} tree symbols{left_out}")
        return {"source": source, "target": target}

    def serving_module(self, model, tokenizers, recipe, **overrides):
        return Parser(model, tokenizers["source"], tokenizers["target"], recipe, **overrides)

    def evaluate(self, model, serving, examples, recipe, *, final=False):
        free_fn = None
        if final and recipe["evaluate"]["unconstrained"]:
            free = self.serving_module(model, serving.tokenizers, recipe, constrained=False)
            free_fn = traced(free, "parse_text")
        return evaluate(
            examples,
            traced(serving, "parse_text"),
            recipe["evaluate"],
            free_fn,
            max_words=self.max_source_tokens(recipe),
            max_length=recipe["decode"]["max_length"],
        )

    def validation_score(self, model, tokenizers, examples, recipe):
        """With `train.patience`: F1 of greedy constrained decoding, what early stopping keeps.

        Token accuracy keeps rising long after the brackets stop improving
        (and a tree is only as good as its worst bracket), so the parser is
        chosen by the figure it is judged on.
        """
        if not recipe["train"]["patience"]:
            return None
        greedy = {**recipe, "decode": {**recipe["decode"], "beam_size": 1}}
        parse = traced(self.serving_module(model, tokenizers, greedy), "parse_text")
        limit = recipe["evaluate"]["max_examples"]
        examples = examples[:limit] if limit else examples

        def f1() -> float:
            results = decode_corpus(parse, [e.sentence for e in examples], progress=False)
            return score_parses(examples, [_symbols(r["tokens"]) for r in results])["f1"]

        return "f1", f1

    def headline(self, metrics):
        return f"F1 {metrics['f1']:.2f}, exact match {metrics['exact_match']:.1f}%"

    def format_metrics(self, metrics):
        return format_metrics(metrics)

    def results(self, signature, items, outputs):
        from zoo.tasks.parsing.results import ParseResult

        return ParseResult.from_outputs(items, outputs)
