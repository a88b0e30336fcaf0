"""The translation task's recipe schema: its sections, defaults and checks."""

from __future__ import annotations

from zoo.config import (
    COUNT,
    Check,
    Field,
    RecipeError,
    Section,
    at_least,
    finetune_section,
    increasing,
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


def _validate_translation_data(data: dict, path: str) -> None:
    if data["kind"] == "tsv" and data["path"] is None:
        raise RecipeError(
            "required when data.kind is 'tsv' (a file of source<TAB>target lines)",
            key=_join(path, "path"),
        )
    if data["kind"] == "parallel":
        for name in ("source_path", "target_path"):
            if data[name] is None:
                raise RecipeError(
                    "required when data.kind is 'parallel' (data.source_path and "
                    "data.target_path: one sentence a line, line i of each a pair)",
                    key=_join(path, name),
                )
    if data["min_words"] > data["max_words"]:
        raise RecipeError(
            f"must be <= {_join(path, 'max_words')} ({data['max_words']}), got {data['min_words']}",
            key=_join(path, "min_words"),
        )


def _resolve_tokenizer_defaults(recipe: dict, path: str) -> None:
    """The tokenizer defaults that depend on the data, written into the recipe.

    SentencePiece (case and accents kept) on data files, WordPiece on the
    synthetic grammar; lower-casing for WordPiece and words only. The resolved
    recipe (printed, saved, exported) then says what was built.
    """
    tokenizer = recipe["tokenizer"]
    if tokenizer["kind"] is None:
        synthetic = recipe["data"]["kind"] == "synthetic"
        tokenizer["kind"] = "wordpiece" if synthetic else "sentencepiece"
    if tokenizer["lowercase"] is None:
        tokenizer["lowercase"] = tokenizer["kind"] != "sentencepiece"


TRANSLATION_SCHEMA = Section(
    {
        "name": name_field("translation"),
        "data": Section(
            {
                "kind": Field(str, "synthetic", choices=("synthetic", "tsv", "parallel")),
                "size": Field(int, 20000, check=COUNT, doc="synthetic: number of examples"),
                "seed": Field(int, 0, check=non_negative(), doc="synthetic: sentence seed"),
                "vocabulary_seed": Field(
                    int, 0, check=non_negative(), doc="synthetic: the language's seed"
                ),
                "min_words": Field(int, 3, check=COUNT, doc="synthetic: shortest sentence"),
                "max_words": Field(int, 60, check=COUNT, doc="synthetic: longest sentence"),
                "path": Field(str, None, path_must_exist=True, doc="tsv: the file"),
                "columns": Field(
                    list[int],
                    [0, 1],
                    check=Check(
                        lambda v: len(v) == 2 and v[0] != v[1] and min(v) >= 0,
                        "a list of two distinct non-negative integers "
                        "[source_column, target_column]",
                    ),
                    doc="tsv: [source_column, target_column]",
                ),
                "reverse": Field(bool, False, doc="tsv: translate the other way"),
                "source_path": Field(str, None, path_must_exist=True, doc="parallel: sources"),
                "target_path": Field(str, None, path_must_exist=True, doc="parallel: targets"),
                "max_pairs": Field(int, None, check=COUNT, doc="read at most this many pairs"),
                "validation_size": Field(int, 500, check=at_least(1)),
                "test_size": Field(int, 1000, check=at_least(1)),
                "max_source_tokens": Field(int, 100, check=COUNT, doc="drop longer training pairs"),
            },
            validate=_validate_translation_data,
        ),
        "tokenizer": {
            "kind": Field(
                str,
                None,
                choices=("sentencepiece", "wordpiece", "word"),
                doc="sentencepiece keeps case, accents and spacing (real text out); "
                "default: sentencepiece on files, wordpiece on the synthetic grammar",
            ),
            "vocab_size": Field(int, 2000, check=COUNT, doc="largest vocabulary"),
            "lower_thresh": Field(int, 2, check=at_least(1), doc="wordpiece: rarest piece kept"),
            "lowercase": Field(
                bool, None, doc="default: false for sentencepiece, true for wordpiece and word"
            ),
        },
        "model": seq2seq_model_section(),
        "train": seq2seq_train_section(),
        "decode": {
            "beam_size": Field(int, 4, check=at_least(1), doc="1 = greedy"),
            "length_penalty": Field(
                float, 0.6, check=non_negative(), doc="GNMT alpha: 0 = plain log-probability"
            ),
            "coverage_penalty": Field(
                float, 0.0, check=non_negative(), doc="GNMT beta: favour reading every source word"
            ),
            "no_repeat_ngram": Field(
                int, 0, check=non_negative(), doc="forbid repeating an n-gram of this size; 0 = off"
            ),
            "max_length": Field(int, 80, check=at_least(1)),
            "precompute": precompute_field(),
        },
        "evaluate": {
            "length_buckets": Field(list[int], [10, 20, 30, 40, 50], check=increasing()),
            "max_examples": Field(int, None, check=COUNT),
            "alignment": Field(bool, True, doc="score attention against gold alignments"),
        },
        "finetune": finetune_section(SEQ2SEQ_PARTS),
    },
    doc="sequence-to-sequence translation with attention (Bahdanau 2015, Luong 2015)",
    validate=_resolve_tokenizer_defaults,
)
