"""A task defined outside the library: write a sequence of letters backwards, with attention.

It is registered from the test folder (`register_task`) with no edit under
`zoo/`, to show that a task is its own code plus one registry line: its
schema is built from the shared sections, its model is the library's
`Seq2Seq`, the runner, export, `zoo.load` and the CLI take it as they take
the library's tasks.
"""

from __future__ import annotations

import dataclasses
import random

import tensorflow as tf

from zoo.config import COUNT, Field, Section, at_least, finetune_section, name_field
from zoo.tasks.base import Input, Result, Signature, Splits, strings, traced
from zoo.tasks.decoding import DECODE_OPTIONS
from zoo.tasks.seq2seq.schema import SEQ2SEQ_PARTS, seq2seq_model_section, seq2seq_train_section
from zoo.tasks.seq2seq.serving import Seq2SeqServing
from zoo.tasks.seq2seq.task import Seq2SeqTask
from zoo.text.symbol_tokenizer import SymbolTokenizer
from zoo.training import decode_corpus

LETTERS = "abcdefgh"

SCHEMA = Section(
    {
        "name": name_field("reverse"),
        "data": {
            "kind": Field(str, "synthetic", choices=("synthetic",)),
            "size": Field(int, 400, check=COUNT),
            "seed": Field(int, 0),
            "max_letters": Field(int, 6, check=at_least(2)),
            "validation_size": Field(int, 20, check=COUNT),
            "test_size": Field(int, 20, check=COUNT),
        },
        "model": seq2seq_model_section(),
        "train": seq2seq_train_section(),
        "decode": {
            "beam_size": Field(int, 1, check=at_least(1)),
            "length_penalty": Field(float, 0.0),
            "max_length": Field(int, 12, check=at_least(1)),
        },
        "finetune": finetune_section(SEQ2SEQ_PARTS),
    }
)


@dataclasses.dataclass
class Sequence:
    letters: str  # "a b c"

    @property
    def reversed(self) -> str:
        return " ".join(reversed(self.letters.split()))


class Reverser(Seq2SeqServing):
    def __init__(self, model, source_tokenizer, target_tokenizer, recipe):
        super().__init__(model, source_tokenizer, target_tokenizer, recipe, name="reverser")

    def reverse_text(self, letters, beam_size=None, max_length=None) -> dict:
        out = self.generate(letters, beam_size, max_length)
        return {
            "reversed": out["translation"],
            "tokens": out["tokens"],
            "source_tokens": out["source_tokens"],
            "attention": out["attention"],
            "score": out["score"],
        }


@dataclasses.dataclass
class ReverseResult(Result):
    letters: str
    text: str
    tokens: list[str]
    source_tokens: list[str]
    attention: object
    score: float

    def display(self) -> str:
        return f"reversed: {self.text}"


class ReverseTask(Seq2SeqTask):
    schema = SCHEMA
    example_noun = "sequences"
    signatures = (Signature("reverse", "reverse_text", (Input("letters"),), DECODE_OPTIONS),)

    def load_splits(self, data):
        rng = random.Random(data["seed"])
        total = data["size"] + data["validation_size"] + data["test_size"]
        examples = [
            Sequence(
                " ".join(rng.choice(LETTERS) for _ in range(rng.randint(2, data["max_letters"])))
            )
            for _ in range(total)
        ]
        n_val, n_test = data["validation_size"], data["test_size"]
        return Splits(
            examples[n_val + n_test :],
            examples[:n_val],
            examples[n_val : n_val + n_test],
            f"{total} random sequences (seed {data['seed']})",
        )

    def pairs(self, examples):
        return [(e.letters, e.reversed) for e in examples]

    def build_tokenizers(self, train, recipe, log):
        source = SymbolTokenizer.build([e.letters for e in train])
        target = SymbolTokenizer.build([e.reversed for e in train])
        return {"source": source, "target": target}

    def serving_module(self, model, tokenizers, recipe):
        return Reverser(model, tokenizers["source"], tokenizers["target"], recipe)

    def evaluate(self, model, serving, examples, recipe, *, final=False):
        outputs = decode_corpus(traced(serving, "reverse_text"), [e.letters for e in examples])
        right = sum(
            o["reversed"].decode() == e.reversed for o, e in zip(outputs, examples, strict=True)
        )
        return {"examples": len(examples), "exact_match": 100.0 * right / max(len(examples), 1)}

    def headline(self, metrics):
        return f"exact match {metrics['exact_match']:.1f}%"

    def results(self, signature, items, outputs):
        return [
            ReverseResult(
                letters=item,
                text=outputs["reversed"][i].decode("utf-8"),
                tokens=strings(outputs["tokens"][i]),
                source_tokens=strings(outputs["source_tokens"][i]),
                attention=outputs["attention"][i],
                score=float(outputs["score"][i]),
            )
            for i, item in enumerate(items)
        ]


class Concatenator(tf.Module):
    """Two strings in, one out: a serving module with two inputs and no model (export only)."""

    def join(self, first, second) -> dict:
        return {"joined": tf.strings.join([first, second], separator=" | ")}
