"""The parsing task's recipe schema: its sections, defaults and checks."""

from __future__ import annotations

from zoo.config import (
    COUNT,
    Field,
    RecipeError,
    Section,
    at_least,
    finetune_section,
    name_field,
    non_negative,
)
from zoo.config.schema import _join
from zoo.tasks.seq2seq.schema import (
    SEQ2SEQ_PARTS,
    precompute_field,
    seq2seq_model_section,
    seq2seq_train_section,
)


def _validate_parsing_data(data: dict, path: str) -> None:
    if data["kind"] == "treebank":
        if data["path"] is None:
            raise RecipeError(
                "required when data.kind is 'treebank' (a folder of .mrg files, or one file)",
                key=_join(path, "path"),
            )
        if not data["test_files"]:
            raise RecipeError(
                "required when data.kind is 'treebank': the file names or patterns held out "
                "for testing, e.g. ['wsj_23*.mrg']",
                key=_join(path, "test_files"),
            )
    if data["min_words"] > data["max_words"]:
        raise RecipeError(
            f"must be <= {_join(path, 'max_words')} ({data['max_words']}), got {data['min_words']}",
            key=_join(path, "min_words"),
        )


PARSING_SCHEMA = Section(
    {
        "name": name_field("parsing"),
        "data": Section(
            {
                "kind": Field(str, "synthetic", choices=("synthetic", "treebank")),
                "size": Field(int, 20000, check=COUNT, doc="synthetic: number of sentences"),
                "seed": Field(int, 0, check=non_negative(), doc="sentences; treebank: shuffle"),
                "min_words": Field(int, 3, check=COUNT, doc="synthetic: shortest sentence"),
                "max_words": Field(int, 60, check=COUNT, doc="synthetic: longest sentence"),
                "validation_size": Field(int, 500, check=at_least(1), doc="synthetic"),
                "test_size": Field(int, 1000, check=at_least(1), doc="synthetic"),
                "path": Field(
                    str, None, path_must_exist="any", doc="treebank: a folder or a .mrg file"
                ),
                "pattern": Field(str, "*.mrg", doc="treebank: the files to read in the folder"),
                "validation_files": Field(
                    list[str],
                    [],
                    doc="treebank: file names or patterns held out for validation "
                    "(empty: 5% of the training trees)",
                ),
                "test_files": Field(
                    list[str], [], doc="treebank: file names or patterns held out for testing"
                ),
                "train_size": Field(
                    int,
                    None,
                    check=COUNT,
                    doc="treebank: train on this many of the training trees, drawn with "
                    "data.seed (a learning curve); default: all of them",
                ),
                "max_train_words": Field(
                    int, 100, check=COUNT, doc="drop longer training sentences"
                ),
            },
            validate=_validate_parsing_data,
        ),
        "tokenizer": {
            "vocab_size": Field(
                int, 20000, check=at_least(5), doc="most frequent words kept; others are [UNK]"
            ),
            "min_count": Field(
                int, 1, check=COUNT, doc="words seen fewer times in training are [UNK]"
            ),
        },
        "model": seq2seq_model_section(
            reverse_source=True,
            pointer=Field(
                bool,
                False,
                doc="also read the encoder vector of the next word to bracket, a pointer "
                "moved by each XX written (Liu et al. 2018): learns from far fewer trees",
            ),
        ),
        "train": seq2seq_train_section(),
        "decode": {
            "beam_size": Field(int, 4, check=at_least(1), doc="1 = greedy"),
            "length_penalty": Field(float, 0.0, check=non_negative()),
            "max_length": Field(
                int, 500, check=at_least(4), doc="most output symbols for any sentence"
            ),
            "length_per_word": Field(
                float,
                4.0,
                check=at_least(1.0),
                doc="a sentence of n words gets at most length_per_word * n + 8 symbols",
            ),
            "constrained": Field(
                bool, True, doc="only well-formed trees over the input words (else repaired)"
            ),
            "xla": Field(
                bool,
                False,
                doc="compile the search with XLA (several times faster on a CPU; compiled "
                "once per batch size, 16-word width, beam size and max_length; TensorFlow "
                "Serving needs --xla_cpu_compilation_enabled)",
            ),
            "precompute": precompute_field(),
            "max_batch_size": Field(
                int,
                0,
                check=non_negative(),
                doc="search a larger batch sorted by length, this many sentences at a time "
                "(each group runs until its own longest tree ends, not the batch's); "
                "0 = the whole batch at once",
            ),
        },
        "evaluate": {
            "max_examples": Field(int, None, check=COUNT),
            "unconstrained": Field(
                bool,
                True,
                doc="also decode without the constraint and report how often repair was needed",
            ),
        },
        "finetune": finetune_section(SEQ2SEQ_PARTS),
    },
    doc="constituency parsing as translation into linearised trees (Vinyals et al. 2015)",
)
