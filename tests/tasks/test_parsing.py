"""End to end: a tiny parsing recipe trains, evaluates, exports, reloads and parses."""

import json
from pathlib import Path

import pytest

from tests.tasks.processes import call_zoo
from zoo import runner
from zoo.config import RecipeError, resolve_recipe
from zoo.data.treebank import is_well_formed

SHARED_TREEBANK = Path(__file__).resolve().parents[2].parent / "shared/data/parsing/treebank"

TINY = {
    "task": "parsing",
    "name": "tinyparse",
    "data": {
        "kind": "synthetic",
        "size": 300,
        "validation_size": 20,
        "test_size": 20,
        "max_words": 12,
    },
    "model": {
        "embedding_dim": 16,
        "encoder": {"units": 16},
        "attention": {"kind": "additive", "units": 16},
        "decoder": {"units": 16},
    },
    "train": {"batch_size": 32, "epochs": 1},
    "decode": {"beam_size": 2},
}


@pytest.fixture(scope="module")
def trained(trained_parsing):
    return trained_parsing


def test_run_scores_well_formed_trees_and_exports(trained):
    _, result, logs = trained
    export = Path(result["export_dir"])
    assert export.name == "1" and (export / "saved_model.pb").is_file()
    extra = export / "assets.extra"
    for name in ("recipe.yaml", "model.keras", "metrics.json", "source_vocab.txt"):
        assert (extra / name).is_file(), name
    metrics = json.loads((extra / "metrics.json").read_text())
    assert metrics["examples"] == 20
    # Even an untrained-looking model writes only trees under the constraint.
    assert metrics["well_formed"] == 100.0 and metrics["repaired"] == 0
    assert 0.0 <= metrics["f1"] <= 100.0 and metrics["length_mismatch"] == 0
    free = metrics["unconstrained"]
    assert 0 <= free["repaired"] <= 20 and 0.0 <= free["f1_after_repair"] <= 100.0
    lines = "\n".join(logs).splitlines()
    assert any(line.startswith("test: labelled bracket F1") for line in lines)
    assert any(line.startswith("test: without the constraint") for line in lines)


def test_zoo_load_parses_into_trees_over_the_words(trained):
    import numpy as np

    import zoo

    _, result, _ = trained
    model = zoo.load(Path(result["export_dir"]).parent)
    assert model.task == "parsing"
    sentences = ["the dog saw a cat .", "birds sing ."]
    parses = model.parse(sentences)
    for sentence, parse in zip(sentences, parses, strict=True):
        words = sentence.split()
        assert is_well_formed(parse.tokens, len(words))
        assert parse.linearized == " ".join(parse.tokens)
        assert parse.to_tree().leaves() == words
        assert parse.source_tokens == [*words, "[END]"]
        assert parse.attention.shape == (len(parse.tokens), len(words) + 1)
        np.testing.assert_allclose(parse.attention.sum(-1), 1.0, rtol=1e-4)
        # The bracketed string: the words in place of XX, in order.
        pieces = parse.tree.split()
        assert [p.rstrip(")") for p in pieces if not p.startswith("(")] == words
        assert parse.tree.count("(") == sum(t.startswith("(") for t in parse.tokens)
        assert parse.draw().splitlines()[0] == parse.tokens[0][1:]
    assert model(sentences[:1])[0].tree == parses[0].tree  # the generic call
    greedy = model.parse("the dog saw a cat .", beam_size=1)
    assert is_well_formed(greedy.tokens, 6)


def test_word_pointer_with_f1_early_stopping_trains_exports_and_parses(tmp_path):
    """`model.decoder.pointer`, `train.patience` (F1 decoded each epoch), `decode.xla`.

    Wired as `recipes/parsing_ptb.yaml` is: Bahdanau, the `general` scorer, a
    LayerNorm output, the search compiled, in sorted groups, with the decoder's
    tables (`decode.precompute`).
    """
    import numpy as np
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the export's ops, as a plain user loads it)

    recipe = resolve_recipe(
        {
            **TINY,
            "name": "tinypointer",
            "model": {
                **TINY["model"],
                "attention": {"kind": "general"},
                "decoder": {
                    "units": 16,
                    "pointer": True,
                    "style": "bahdanau",
                    "output": "layernorm",
                },
            },
            "train": {"batch_size": 32, "epochs": 3, "patience": 2},
            "decode": {"beam_size": 2, "xla": True, "max_batch_size": 2, "precompute": True},
            "evaluate": {"unconstrained": False},
        },
        [f"export.dir={tmp_path / 'saved_models'}", f"run.dir={tmp_path / 'runs'}"],
    )
    logs = []
    result = runner.train(recipe, log=logs.append)
    history = result["metrics"]["history"]
    assert len(history["val_f1"]) == 3 and all(0.0 <= f <= 100.0 for f in history["val_f1"])
    import keras

    extra = Path(result["export_dir"]) / "assets.extra"
    model = keras.saving.load_model(extra / "model.keras")
    vocab = (extra / "target_vocab.txt").read_text(encoding="utf-8").splitlines()
    assert model.decoder.pointer_token == vocab.index("XX") and model.decoder.pointer_reversed
    loaded = tf.saved_model.load(result["export_dir"])
    sentences = tf.constant(["the dog saw a cat .", "birds sing .", ""])
    out = loaded.signatures["parse"](sentence=sentences)
    for row, n in zip(out["tokens"].numpy()[:2], (6, 3), strict=True):
        assert is_well_formed([t.decode() for t in row if t], n)
    assert np.isfinite(out["score"].numpy()).all() and out["tree"].numpy()[2] == b""
    assert result["metrics"]["well_formed"] == 100.0
    # The compiled search, in sorted groups of 2 sentences, with the decoder's tables,
    # parses as the plain graph does with its plain step on the whole batch (greedy
    # and beam), and a sentence wider than one compiled width (16) is still one tree
    # over its words.
    from zoo.finetune import load_base
    from zoo.tasks.parsing.task import Parser

    base = load_base(result["export_dir"])
    assert base.model.decoder.precomputes_projections
    plain_decode = {"xla": False, "max_batch_size": 0, "precompute": False}
    plain_recipe = {**recipe, "decode": {**recipe["decode"], **plain_decode}}
    plain = Parser(base.model, base.tokenizers["source"], base.tokenizers["target"], plain_recipe)
    long = " ".join(["the old dog saw a red cat near the house ."] * 3)
    batch = tf.constant(["the dog saw a cat .", long, "birds sing ."])
    for beam in (1, 2):
        options = {"beam_size": tf.constant(beam), "max_length": tf.constant(500)}
        compiled = loaded.signatures["parse_options"](sentence=batch, **options)
        expected = plain.parse_text(batch, **options)
        assert compiled["tree"].numpy().tolist() == expected["tree"].numpy().tolist()
        np.testing.assert_allclose(compiled["score"], expected["score"], rtol=1e-4, atol=1e-4)
        assert is_well_formed([t.decode() for t in compiled["tokens"].numpy()[1] if t], 33)


def test_sorted_groups_parse_as_the_whole_batch(trained):
    """`decode.max_batch_size`: the same trees, scores and attention as one search of the batch."""
    import numpy as np
    import tensorflow as tf

    from zoo.finetune import load_base
    from zoo.tasks.parsing.task import Parser

    recipe, result, _ = trained
    base = load_base(result["export_dir"])
    long = " ".join(["the old dog saw a red cat near the house ."] * 3)  # 33 words: 3 XLA widths
    batch = tf.constant(
        ["birds sing .", long, "", "the dog saw a cat .", "a cat .", long[:40], "dogs bark ."]
    )

    def parser(xla, size):
        decode = {**recipe["decode"], "xla": xla, "max_batch_size": size}
        return Parser(
            base.model,
            base.tokenizers["source"],
            base.tokenizers["target"],
            {**recipe, "decode": decode},
        )

    for xla in (False, True):
        whole, grouped = (
            parser(xla, 0),
            parser(xla, 3),
        )  # 7 sentences: groups of 3, 3 and 1 + 2 copies
        for beam, max_length in ((1, 500), (2, 500), (1, 20)):
            options = {"beam_size": tf.constant(beam), "max_length": tf.constant(max_length)}
            expected = whole.parse_text(batch, **options)
            got = grouped.parse_text(batch, **options)
            for key in ("tree", "tokens", "length", "parsed_words", "truncated"):
                assert got[key].numpy().tolist() == expected[key].numpy().tolist(), (xla, beam, key)
            for key in ("score", "attention"):
                np.testing.assert_allclose(got[key], expected[key], rtol=1e-4, atol=1e-5)
            if max_length == 20:  # the long sentences' trees hit the bound
                assert got["truncated"].numpy().any() or (got["parsed_words"].numpy() < 33).any()
        # A batch no larger than a group is searched at once.
        small = grouped.parse_text(batch[:3], beam_size=tf.constant(1), max_length=tf.constant(500))
        assert (
            small["tree"].numpy().tolist()
            == whole.parse_text(batch[:3], beam_size=tf.constant(1), max_length=tf.constant(500))[
                "tree"
            ]
            .numpy()
            .tolist()
        )
    with pytest.raises(RecipeError, match="decode.max_batch_size"):
        resolve_recipe({**TINY, "decode": {"max_batch_size": -1}})


def test_tree_string_puts_each_word_in_place_of_its_placeholder():
    import tensorflow as tf

    from zoo.tasks.parsing import bracketed_trees

    tokens = tf.constant(
        [
            ["(S", "(NP", "XX", ")NP", "(VP", "XX", "(NP", "XX", "XX", ")NP", ")VP", "XX", ")S"],
            ["(S", "XX", "XX", ")S", "", "", "", "", "", "", "", "", ""],
            [""] * 13,
        ]
    )
    words = tf.ragged.constant([["John", "has", "a", "dog", "."], ["(", "hi)"], []])
    trees = [t.decode() for t in bracketed_trees(tokens, words).numpy()]
    assert trees == ["(S (NP John) (VP has (NP a dog)) .)", "(S -LRB- hi-RRB-)", ""]


def test_empty_and_very_long_sentences(trained):
    import zoo

    _, result, _ = trained
    model = zoo.load(result["export_dir"])
    empty, blank = model.parse(["", "   "])
    assert empty.tree == "" and empty.tokens == [] and empty.score == 0.0 and blank.tree == ""
    assert empty.draw() == ""
    # 200 words, far longer than anything in training: still one tree over all of them.
    words = ("the old dog saw a red cat near the house and " * 20).split()
    assert len(words) == 220
    long = model.parse(" ".join(words[:200]), beam_size=1)
    assert is_well_formed(long.tokens, 200) and long.to_tree().leaves() == words[:200]
    # A budget too small for a tree over every word: a tree over the first words (2 fit
    # in 5 symbols), the others attached flat under the root, and a warning.
    with pytest.warns(zoo.TruncationWarning, match="covers words 1-2, words 3-6"):
        short = model.parse("the dog saw a cat .", beam_size=1, max_length=5)
    assert short.parsed_words == 2 and is_well_formed(short.tokens, 6)
    assert short.to_tree().leaves() == "the dog saw a cat .".split()
    # Below 4 symbols no tree fits at all: the empty tree, not a broken one.
    with pytest.warns(zoo.TruncationWarning, match="no tree fits"):
        none = model.parse("the dog saw a cat .", beam_size=1, max_length=3)
    assert none.tokens == [] and none.tree == ""


def test_score_parses_repairs_and_counts_malformed_output():
    from zoo.data.synthetic_parsing import examples_from_trees
    from zoo.data.treebank import linearize, parse_bracketed
    from zoo.tasks.parsing import score_parses

    tree = parse_bracketed("(S (NP (NNP John)) (VP (VBZ has) (NP (DT a) (NN dog))) (. .))")[0]
    example = examples_from_trees([tree])[0]
    perfect = score_parses([example], [linearize(example.tree)])
    assert perfect["f1"] == 100.0 and perfect["well_formed"] == 100.0 and perfect["repaired"] == 0
    # Unclosed and one XX short: repaired, then scored (NP and VP found, inner NP lost).
    broken = "(S (NP XX )NP (VP XX XX XX".split()
    scored = score_parses([example], [broken])
    assert scored["repaired"] == 1 and scored["well_formed"] == 0.0
    # Gold brackets: S, NP, VP, NP = 4 (the final period is deleted by EVALB);
    # repaired: (S (NP XX) (VP XX XX XX XX)) -> S, NP, VP = 3 predicted, VP spans 1-4 gold vs 1-4.
    assert scored["precision"] == 100.0 and scored["recall"] == 75.0


def test_cli_predict_prints_and_draws_the_tree(trained, tmp_path, capsys, monkeypatch):
    _, result, _ = trained
    plot = tmp_path / "attention.png"
    proc = call_zoo(
        capsys,
        monkeypatch,
        "predict",
        result["export_dir"],
        "John has a dog .",
        "--plot",
        str(plot),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("(") and lines[0].endswith(")")
    assert any(line.endswith("── John") for line in lines[1:])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = call_zoo(
        capsys,
        monkeypatch,
        "predict",
        result["export_dir"],
        "John has a dog .",
        "--json",
        cwd=tmp_path,
    )
    payload = json.loads(proc.stdout)
    assert payload["source"] == "John has a dog ." and payload["linearized"].count("XX") == 5


def test_parsing_recipe_errors_name_the_key(tmp_path, capsys, monkeypatch):
    with pytest.raises(RecipeError, match="data.test_files"):
        resolve_recipe({"task": "parsing", "data": {"kind": "treebank", "path": str(tmp_path)}})
    with pytest.raises(RecipeError, match="data.path"):
        resolve_recipe({"task": "parsing", "data": {"kind": "treebank", "test_files": ["a"]}})
    recipe = tmp_path / "ptb.yaml"
    (tmp_path / "trees").mkdir()
    (tmp_path / "trees" / "a.mrg").write_text("( (S (NP (NN x)) (VP (VBZ y))) )\n")
    recipe.write_text(
        "task: parsing\ndata: {kind: treebank, path: trees, test_files: [nope*.mrg]}\n"
    )
    proc = call_zoo(capsys, monkeypatch, "run", str(recipe), cwd=tmp_path)
    assert proc.returncode == 2 and "nope*.mrg" in proc.stderr and "Traceback" not in proc.stderr


# Slow (33 s): the default run reads treebank files with named validation and
# test files in tests/tasks/test_finetune.py, which fine-tunes on them.
@pytest.mark.slow
@pytest.mark.skipif(not SHARED_TREEBANK.is_dir(), reason=f"no treebank sample at {SHARED_TREEBANK}")
def test_treebank_recipe_trains_on_files_and_scores_held_out_files(tmp_path):
    from zoo.tasks import parsing

    recipe = resolve_recipe(
        {
            **TINY,
            "name": "tinyptb",
            "data": {
                "kind": "treebank",
                "path": str(SHARED_TREEBANK),
                "pattern": "wsj_000*.mrg",
                "validation_files": ["wsj_0008.mrg"],
                "test_files": ["wsj_0009.mrg"],
            },
            "evaluate": {"unconstrained": False},
        },
        [f"export.dir={tmp_path / 'saved_models'}", f"run.dir={tmp_path / 'runs'}"],
    )
    logs = []
    metrics = runner.train(recipe, log=logs.append)["metrics"]
    assert any("9 files" in line for line in logs if line.startswith("data: treebank"))
    # wsj_0009.mrg holds 6 trees (as read by the treebank tests); all parsed, all trees.
    assert metrics["examples"] == len(parsing.load_splits(recipe["data"]).test)
    assert metrics["well_formed"] == 100.0 and metrics["length_mismatch"] == 0


def test_train_size_takes_a_seeded_subset_of_the_training_trees(tmp_path):
    """`data.train_size` (a learning curve): smaller sizes are subsets; held-out files unchanged."""
    from tests.tasks.shifted_data import write_shifted_treebank
    from zoo.tasks.parsing import load_splits

    folder = write_shifted_treebank(tmp_path / "trees", {"train": 40, "dev": 6, "test": 5})
    data = {
        "task": "parsing",
        "data": {
            "kind": "treebank",
            "path": str(folder),
            "validation_files": ["dev.mrg"],
            "test_files": ["test.mrg"],
        },
    }

    def splits(size):
        recipe = resolve_recipe({**data, "data": {**data["data"], "train_size": size}})
        return load_splits(recipe["data"])

    full, ten, twenty = splits(None), splits(10), splits(20)
    assert len(full.train) == 40 and len(ten.train) == 10 and len(twenty.train) == 20
    assert {e.sentence for e in ten.train} < {e.sentence for e in twenty.train}
    assert {e.sentence for e in twenty.train} < {e.sentence for e in full.train}
    assert [e.sentence for e in ten.train] == [e.sentence for e in splits(10).train]
    assert ten.test == full.test and ten.validation == full.validation
    assert "training on 10 of them (data.train_size)" in ten.report
    assert len(splits(500).train) == 40  # more than there are: all of them
    with pytest.raises(RecipeError, match="data.train_size"):
        resolve_recipe({**data, "data": {**data["data"], "train_size": 0}})


def test_treebank_report_names_trees_of_traces_and_files_without_trees(tmp_path):
    from tests.tasks.shifted_data import write_shifted_treebank
    from zoo.tasks.parsing import load_splits, read_files

    folder = write_shifted_treebank(tmp_path / "trees", {"train": 30, "dev": 4, "test": 3})
    with (folder / "train.mrg").open("a") as f:  # line 31: a tree of traces only
        f.write("( (S (NP-SBJ (-NONE- *T*-1)) (VP (-NONE- *?*))) )\n")
    (folder / "notes.mrg").write_text("\n")
    recipe = resolve_recipe(
        {
            "task": "parsing",
            "data": {
                "kind": "treebank",
                "path": str(folder),
                "validation_files": ["dev.mrg"],
                "test_files": ["test.mrg"],
            },
        }
    )
    splits = load_splits(recipe["data"])
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (30, 4, 3)
    for report in (splits.report, read_files(recipe["data"])[1]):
        assert f"treebank {folder}: 4 files, 37 trees" in report
        assert "1 tree of -NONE- traces only" in report and "train.mrg line 31" in report
        assert "1 file without any tree: notes.mrg" in report


def test_vocabulary_is_built_on_the_trees_training_keeps():
    from zoo.data.synthetic_parsing import ParseExample, generate_parse_examples
    from zoo.data.treebank import parse_bracketed
    from zoo.tasks import get_task

    task = get_task("parsing")
    recipe = resolve_recipe({"task": "parsing", "tokenizer": {"vocab_size": 60}})
    examples = generate_parse_examples(40, seed=3, max_words=10)
    # Past data.max_train_words (100); each word 5 times, frequent enough to fill the vocabulary.
    leaves = " ".join(f"(NN huge{i % 30})" for i in range(150))
    huge = ParseExample(parse_bracketed(f"(S (NP {leaves}) (VP (VBZ x)))")[0])
    logs = []
    with_huge = task.build_tokenizers([*examples[:20], huge, *examples[20:]], recipe, logs.append)
    without = task.build_tokenizers(examples, recipe, lambda _: None)
    assert not [w for w in with_huge["source"].vocab if w.startswith("huge")]
    assert with_huge["source"].vocab == without["source"].vocab
    assert with_huge["target"].vocab == without["target"].vocab
    assert "built on 40 of 41 training trees: 1 longer than 100 words" in logs[-1]
