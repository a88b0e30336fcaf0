import dataclasses
import random
from pathlib import Path

import pytest

from zoo.data.treebank import (
    Tree,
    TreebankFormatError,
    clean_tree,
    delinearize,
    is_well_formed,
    linearize,
    parse_bracketed,
    read_treebank,
    read_treebank_file,
    repair_linearized,
    split_by_file,
)

SAMPLE_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "parsing" / "treebank"

DOG = "(S (NP (DT the) (NN dog)) (VP (VBZ has) (NP (DT a) (NN bone))) (. .))"
DOG_LINEARIZED = "(S (NP XX XX )NP (VP XX (NP XX XX )NP )VP XX )S".split()

MRG = """\
( (S
    (NP-SBJ-1 (NNP Mr.) (NNP Vinken) )
    (VP (VBZ is)
      (NP-PRD (NN chairman) ))
    (. .) ))
( (S (NP-SBJ (-NONE- *T*-1)) (VP (VBD said) (-LRB- -LRB-) (NN so) (-RRB- -RRB-)) (. .)))
"""


def one(text: str) -> Tree:
    (tree,) = parse_bracketed(text)
    return tree


def with_placeholders(tree: Tree, placeholder: str = "XX") -> Tree:
    """The tree with every part of speech relabelled `placeholder`."""
    if tree.is_preterminal:
        return Tree(placeholder, tree.children)
    return Tree(tree.label, tuple(with_placeholders(child) for child in tree.children))


# --------------------------------------------------------------------------- Tree


def test_tree_leaves_pos_tags_and_bracketed_round_trip():
    tree = one(DOG)
    assert tree.leaves() == ["the", "dog", "has", "a", "bone", "."]
    assert tree.pos_tags() == ["DT", "NN", "VBZ", "DT", "NN", "."]
    assert tree.to_bracketed() == DOG
    assert one(tree.to_bracketed()) == tree
    assert tree.children[0] == Tree("NP", (Tree("DT", ("the",)), Tree("NN", ("dog",))))


def test_tree_is_immutable_hashable_and_validated():
    tree = Tree("NP", [Tree("NN", ["dog"])])
    assert tree.children == (Tree("NN", ("dog",)),)
    assert hash(tree) == hash(Tree("NP", (Tree("NN", ("dog",)),)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        tree.label = "VP"
    with pytest.raises(ValueError, match="label"):
        Tree("N P", ("dog",))
    with pytest.raises(TypeError, match="children"):
        Tree("NP", (3,))
    with pytest.raises(TypeError, match="children"):
        Tree("NP", ("",))


def test_outer_empty_bracket_is_kept_by_the_reader():
    tree = one("( (S (NP (NN it)) (VP (VBZ works))) )")
    assert tree.label == ""
    assert tree.to_bracketed() == "( (S (NP (NN it)) (VP (VBZ works))))"
    assert one(tree.to_bracketed()) == tree


def test_deep_trees_do_not_hit_the_recursion_limit():
    depth = 5000
    tree = Tree("NN", ("w",))
    for _ in range(depth):
        tree = Tree("NP", (tree,))
    tokens = linearize(tree)
    assert len(tokens) == 2 * depth + 1
    assert tree.leaves() == ["w"]
    assert tree.to_bracketed().count("(") == depth + 1
    assert is_well_formed(tokens, 1)


# --------------------------------------------------------------------------- reading


def test_parse_several_trees_spanning_and_sharing_lines():
    trees = parse_bracketed(
        MRG + "(S (NP (PRP I)) (VP (VBD ran))) (FRAG (NN wow))\n(TOP (NP (NN a)))"
    )
    assert len(trees) == 5
    assert trees[0].leaves() == ["Mr.", "Vinken", "is", "chairman", "."]
    assert trees[1].leaves() == ["*T*-1", "said", "-LRB-", "so", "-RRB-", "."]
    assert [t.label for t in trees] == ["", "", "S", "FRAG", "TOP"]
    assert parse_bracketed("  \n\n ") == []


def test_unclosed_tree_names_the_source_and_the_line_where_it_began():
    text = "(S (NP (NN a)))\n\n( (S (NP (NN b))\n   (VP (VBZ c))\n( (S (NP (NN d))) )\n"
    with pytest.raises(TreebankFormatError) as info:
        parse_bracketed(text, source="broken.mrg")
    message = str(info.value)
    assert message.startswith("broken.mrg, line 3: unbalanced parentheses")
    assert "never closed" in message
    assert "line 5 starts with '('" in message  # where the next tree probably begins
    assert info.value.source == "broken.mrg"
    assert info.value.line == 3


def test_stray_closing_bracket_and_words_outside_trees_are_errors():
    with pytest.raises(TreebankFormatError, match=r"^<string>, line 2: .*'\)' closes nothing"):
        parse_bracketed("(S (NN a))\n)")
    with pytest.raises(
        TreebankFormatError, match=r"line 3: word 'c' outside.*began at line 1.*too many"
    ):
        parse_bracketed("( (S (NP (NN a))\n (VP (VB b))))\n c) )")


def test_read_treebank_file_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "wsj_9999.mrg"
    path.write_text("( (S (NN a)) )\n( (S\n  (NP (NN b))\n")
    with pytest.raises(TreebankFormatError, match=r"wsj_9999\.mrg, line 2: unbalanced"):
        read_treebank_file(path)
    path.write_bytes(b"( (S (NN a)) )\n( (S (NN caf\xe9)) )\n")
    with pytest.raises(TreebankFormatError, match=r"wsj_9999\.mrg, line 2: not UTF-8"):
        read_treebank_file(path)
    with pytest.raises(FileNotFoundError):
        read_treebank_file(tmp_path / "missing.mrg")


def test_read_treebank_folder_recursive_sorted_by_name(tmp_path):
    (tmp_path / "01").mkdir()
    (tmp_path / "00").mkdir()
    (tmp_path / "01" / "wsj_0101.mrg").write_text("( (S (NN b)) )")
    (tmp_path / "00" / "wsj_0002.mrg").write_text("( (S (NN a)) )\n( (S (NN c)) )")
    (tmp_path / "00" / "notes.txt").write_text("not a tree")
    trees = read_treebank(tmp_path)
    assert list(trees) == ["wsj_0002.mrg", "wsj_0101.mrg"]
    assert [len(v) for v in trees.values()] == [2, 1]
    assert list(read_treebank(tmp_path, pattern="wsj_01*.mrg")) == ["wsj_0101.mrg"]
    files = [tmp_path / "01" / "wsj_0101.mrg", tmp_path / "00" / "wsj_0002.mrg"]
    assert list(read_treebank(files)) == ["wsj_0002.mrg", "wsj_0101.mrg"]
    assert list(read_treebank(files[0])) == ["wsj_0101.mrg"]
    with pytest.raises(FileNotFoundError, match=r"\*\.tree"):
        read_treebank(tmp_path, pattern="*.tree")
    (tmp_path / "01" / "wsj_0002.mrg").write_text("( (S (NN d)) )")
    with pytest.raises(ValueError, match="same name"):
        read_treebank(tmp_path)


def test_read_treebank_reports_malformed_files_in_a_folder(tmp_path):
    (tmp_path / "wsj_0001.mrg").write_text("( (S (NN a)) )")
    (tmp_path / "wsj_0002.mrg").write_text("( (S (NN a)) )\n\n\n( (S (NN b) )")
    with pytest.raises(TreebankFormatError, match=r"wsj_0002\.mrg, line 4"):
        read_treebank(tmp_path)


def test_read_clean_treebank_reports_trees_of_traces_and_empty_files(tmp_path):
    from zoo.data.treebank import read_clean_treebank

    (tmp_path / "a.mrg").write_text(
        "( (S (NP (NN x)) (VP (VBZ y))) )\n"
        "\n"
        "( (S (NP-SBJ (-NONE- *T*-1)) (VP (-NONE- *?*))) )\n"
        "( (S (NN z)) )\n"
    )
    (tmp_path / "b.mrg").write_text("( (S (NN w)) )\n")
    (tmp_path / "empty.mrg").write_text("\n\n")
    trees, report = read_clean_treebank(tmp_path)
    assert list(trees) == ["a.mrg", "b.mrg", "empty.mrg"]
    assert [t.leaves() for t in trees["a.mrg"]] == [["x", "y"], ["z"]]
    assert trees["empty.mrg"] == []
    assert report.files == 3 and report.trees == 3
    assert report.dropped == [("a.mrg", 3)] and report.empty_files == ["empty.mrg"]
    summary = report.summary()
    assert f"treebank {tmp_path}: 3 files, 3 trees" in summary
    assert "1 tree of -NONE- traces only" in summary and "a.mrg line 3" in summary
    assert "1 file without any tree: empty.mrg" in summary


def test_split_by_file():
    trees = {f"wsj_{n:04d}.mrg": [Tree("S", (Tree("NN", (str(n),)),))] for n in (2201, 1, 2301, 2)}
    train, validation, test = split_by_file(trees, ["wsj_22*.mrg"], "wsj_2301.mrg")
    assert [t.leaves() for t in train] == [["1"], ["2"]]
    assert [t.leaves() for t in validation] == [["2201"]]
    assert [t.leaves() for t in test] == [["2301"]]
    with pytest.raises(ValueError, match="wsj_99"):
        split_by_file(trees, ["wsj_99*.mrg"], [])
    with pytest.raises(ValueError, match="both validation and test"):
        split_by_file(trees, ["wsj_2*.mrg"], ["wsj_23*.mrg"])


# --------------------------------------------------------------------------- cleaning


def test_clean_tree_drops_traces_their_emptied_parents_tags_and_the_wrapper():
    raw = one(
        "( (S (NP-SBJ-1 (NNP Mr.) (NNP Vinken))"
        " (VP (VBD said) (SBAR (-NONE- 0) (S (NP-SBJ (-NONE- *T*-1)) (VP (VBZ is) (ADJP-PRD=2 (JJ ok))))))"
        " (PRT|ADVP (RP up)) (. .)) )"
    )
    assert clean_tree(raw) == one(
        "(S (NP (NNP Mr.) (NNP Vinken)) (VP (VBD said) (SBAR (S (VP (VBZ is) (ADJP (JJ ok))))))"
        " (PRT (RP up)) (. .))"
    )


def test_clean_tree_keeps_labels_that_start_with_a_dash():
    tree = clean_tree(one("(ROOT (S (PRN (-LRB- -LRB-) (NN aside) (-RRB- -RRB-)) (-LCB- -LCB-)))"))
    assert tree.pos_tags() == ["-LRB-", "NN", "-RRB-", "-LCB-"]
    assert tree.label == "S"


def test_clean_tree_wrappers():
    assert clean_tree(one("(TOP (S (NN a)))")) == one("(S (NN a))")
    assert clean_tree(one("( (S (NN a)))")) == one("(S (NN a))")
    assert clean_tree(one("(S-TPC-1 (NN a))")) == one("(S (NN a))")  # no wrapper at all
    # Several children, or a lone part of speech: the wrapper stays, named TOP.
    assert clean_tree(one("( (NP (NN a)) (. .))")) == one("(TOP (NP (NN a)) (. .))")
    assert clean_tree(one("( (NN a))")) == one("(TOP (NN a))")
    assert clean_tree(one("(NN a)")) == one("(TOP (NN a))")


def test_clean_tree_returns_none_when_only_traces_are_left():
    assert clean_tree(one("( (S (NP-SBJ (-NONE- *)) (VP (-NONE- *?*))) )")) is None
    assert clean_tree(one("( )")) is None


# --------------------------------------------------------------------------- linearising


def test_linearize_exact_sequence():
    assert linearize(one(DOG)) == DOG_LINEARIZED
    assert linearize(one(DOG), pos_placeholder="<w>")[2] == "<w>"


def test_delinearize_inverts_linearize():
    tree = one(DOG)
    back = delinearize(linearize(tree), tree.leaves())
    assert back == with_placeholders(tree)
    assert back.to_bracketed() == (
        "(S (NP (XX the) (XX dog)) (VP (XX has) (NP (XX a) (XX bone))) (XX .))"
    )
    words = ["w1", "w2", "w3", "w4", "w5", "w6"]
    assert delinearize(DOG_LINEARIZED, words).leaves() == words


def test_linearize_refuses_trees_without_a_sequence():
    with pytest.raises(ValueError, match="bare part of speech"):
        linearize(Tree("NN", ("dog",)))
    with pytest.raises(ValueError, match="cover a word"):
        linearize(one("(S (NP) (NN dog))"))
    with pytest.raises(ValueError, match="label"):
        linearize(one("( (S (NN dog)))"))


@pytest.mark.parametrize(
    "tokens, n_words, problem",
    [
        ("(S (NP XX XX )NP", 2, "never closed"),
        ("(S (NP XX XX )NP )S )S", 2, "after the root"),
        ("(S XX )S )S", 1, "after the root"),
        ("(S (NP XX XX )VP )S", 2, r"'\)VP' at position 4 closes '\(NP'"),
        ("(S (NP XX XX )NP )", 2, "closes '\\(S'"),
        ("(S XX XX XX )S", 2, "3 'XX' for 2 words"),
        ("(S XX )S", 2, "1 'XX' for 2 words"),
        ("(S (NP )NP XX )S", 1, "covers no word"),
        ("(S XX )S (S XX )S", 2, "after the root"),
        ("XX (S XX )S", 2, "outside any bracket"),
        ("(S XX dog )S", 1, "neither a bracket"),
        ("", 1, "no bracket"),
        ("(S XX )S", 0, "at least one word"),
    ],
)
def test_delinearize_rejects_malformed_sequences(tokens, n_words, problem):
    tokens = tokens.split()
    with pytest.raises(ValueError, match=problem):
        delinearize(tokens, [f"w{i}" for i in range(n_words)])
    assert not is_well_formed(tokens, n_words)


def test_is_well_formed():
    assert is_well_formed(DOG_LINEARIZED, 6)
    assert not is_well_formed(DOG_LINEARIZED, 5)
    assert not is_well_formed(DOG_LINEARIZED, True)
    assert is_well_formed(["(S", "<w>", ")S"], 1, pos_placeholder="<w>")
    assert not is_well_formed(["(S", "XX", ")S"], 1, pos_placeholder="<w>")


# --------------------------------------------------------------------------- repair


@pytest.mark.parametrize(
    "tokens, n_words, expected",
    [
        # Missing closing brackets are added at the end, innermost first.
        ("(S (NP XX XX )NP (VP XX", 3, "(S (NP XX XX )NP (VP XX )VP )S"),
        # An unmatched closing bracket is dropped.
        ("(S (NP XX )NP )NP )S", 1, "(S (NP XX )NP )S"),
        ("(S (NP XX )NP )S )S )VP", 1, "(S (NP XX )NP )S"),
        # A mismatched closing label is relabelled to match.
        ("(S (NP XX XX )VP (VP XX )NP )S", 3, "(S (NP XX XX )NP (VP XX )VP )S"),
        ("(S (NP XX ) XX )", 2, "(S (NP XX )NP XX )S"),
        # Too many XX: the extra ones go, from the end.
        ("(S (NP XX XX )NP (VP XX XX )VP )S", 2, "(S (NP XX XX )NP )S"),
        # Too few XX: appended in the innermost constituent still open ...
        ("(S (NP XX XX )NP (VP XX", 5, "(S (NP XX XX )NP (VP XX XX XX )VP )S"),
        # ... the root, when every bracket was closed.
        ("(S (NP XX )NP )S", 3, "(S (NP XX )NP XX XX )S"),
        # No bracket at all.
        ("XX XX XX", 3, "(S XX XX XX )S"),
        ("", 2, "(S XX XX )S"),
        (")S )NP", 1, "(S XX )S"),
        ("XX (NP XX )NP", 2, "(S XX (NP XX )NP )S"),
        # The root closed too early: its closing bracket moves to the end.
        ("(S (NP XX )NP )S (VP XX )VP )S", 2, "(S (NP XX )NP (VP XX )VP )S"),
        ("(NP XX )NP (VP XX )VP", 2, "(NP XX (VP XX )VP )NP"),
        # Constituents covering no word are removed.
        ("(S (NP )NP (VP (ADVP )ADVP )VP XX )S", 1, "(S XX )S"),
        # Unknown tokens are dropped.
        ("<s> (S (NP XX the XX )NP ( <unk> XX )S </s>", 3, "(S (NP XX XX )NP XX )S"),
    ],
)
def test_repair_examples(tokens, n_words, expected):
    repaired, was_repaired = repair_linearized(tokens.split(), n_words)
    assert repaired == expected.split()
    assert was_repaired
    assert is_well_formed(repaired, n_words)
    assert repaired.count("XX") == n_words
    delinearize(repaired, [f"w{i}" for i in range(n_words)])


def test_repair_leaves_well_formed_sequences_alone():
    repaired, was_repaired = repair_linearized(DOG_LINEARIZED, 6)
    assert repaired == DOG_LINEARIZED
    assert repaired is not DOG_LINEARIZED
    assert not was_repaired


def test_repair_options_and_errors():
    assert repair_linearized(["<w>"], 1, pos_placeholder="<w>", root_label="TOP") == (
        ["(TOP", "<w>", ")TOP"],
        True,
    )
    with pytest.raises(ValueError, match="n_words=0"):
        repair_linearized(["(S", "XX", ")S"], 0)
    with pytest.raises(ValueError, match="root_label"):
        repair_linearized(["XX"], 1, root_label="(S")


def test_repair_always_gives_a_well_formed_tree():
    alphabet = ["(S", "(NP", "(VP", ")S", ")NP", ")VP", ")", "XX", "XX", "XX", "junk", "("]
    rng = random.Random(0)
    for _ in range(2000):
        tokens = [rng.choice(alphabet) for _ in range(rng.randint(0, 20))]
        n_words = rng.randint(1, 8)
        repaired, was_repaired = repair_linearized(tokens, n_words)
        assert is_well_formed(repaired, n_words), (tokens, n_words, repaired)
        assert repaired.count("XX") == n_words
        assert was_repaired == (repaired != tokens)
        # Repair is idempotent.
        assert repair_linearized(repaired, n_words) == (repaired, False)


# --------------------------------------------------------------------------- real sample


@pytest.fixture(scope="module")
def sample():
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"Penn Treebank sample not found at {SAMPLE_DIR} (see shared/data/README.md)")
    return read_treebank(SAMPLE_DIR)


def test_sample_files_and_tree_count(sample):
    assert list(sample) == [f"wsj_{n:04d}.mrg" for n in range(1, 100)]
    assert sum(len(trees) for trees in sample.values()) == 1921
    first = clean_tree(sample["wsj_0001.mrg"][0])
    assert " ".join(first.leaves()).startswith("Pierre Vinken , 61 years old")
    assert first.pos_tags()[:3] == ["NNP", "NNP", ","]


def test_sample_cleans_and_round_trips(sample):
    for name, trees in sample.items():
        for raw in trees:
            tree = clean_tree(raw)
            assert tree is not None and tree.leaves(), name
            assert "-NONE-" not in tree.pos_tags(), name
            assert len(tree.leaves()) == len(raw.leaves()) - raw.pos_tags().count("-NONE-")
            tokens = linearize(tree)
            labels = [token[1:] for token in tokens if token != "XX"] + tree.pos_tags()
            for label in labels:
                assert label.startswith("-") or not ("-" in label or "=" in label), (name, label)
            words = tree.leaves()
            assert is_well_formed(tokens, len(words))
            assert delinearize(tokens, words) == with_placeholders(tree)
            assert repair_linearized(tokens, len(words)) == (tokens, False)
