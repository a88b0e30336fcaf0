"""Tokenizers inside a SavedModel, reloaded in a process where `zoo` cannot be imported."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import tensorflow as tf

from tests.text.conftest import GERMAN_SENTENCES

TEXTS = ["The cat sat on the mat.", "the gardenbridge ωmega", "", *GERMAN_SENTENCES[:2]]

CHILD = textwrap.dedent(
    """
    import json, sys
    sys.modules["zoo"] = None  # the package is installed (editable): make it unimportable
    try:
        import zoo  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("zoo is importable")
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the ops the graph uses)

    loaded = tf.saved_model.load(sys.argv[1])
    texts = tf.constant(json.loads(sys.argv[2]))
    out = loaded.signatures["tokenize"](text=texts)
    ids = out["wordpiece_ids"]
    result = {
        "wordpiece_ids": ids.numpy().tolist(),
        "wordpiece_pieces": [[p.decode() for p in row] for row in out["wordpiece_pieces"].numpy()],
        "word_ids": out["word_ids"].numpy().tolist(),
        "wordpiece_text": [
            t.decode() for t in loaded.signatures["detokenize_wordpiece"](ids=ids)["text"].numpy()
        ],
        "word_text": [
            t.decode()
            for t in loaded.signatures["detokenize_word"](ids=out["word_ids"])["text"].numpy()
        ],
        "empty_batch": loaded.tokenize(tf.constant([], tf.string))["word_ids"].shape.as_list(),
        "zoo_modules": sorted(m for m, v in sys.modules.items() if m.startswith("zoo") and v),
    }
    print(json.dumps(result))
    """
)


class Exported(tf.Module):
    def __init__(self, wordpiece, word_tokenizer):
        super().__init__()
        self.wordpiece = wordpiece
        self.word_tokenizer = word_tokenizer

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def tokenize(self, text):
        ids = self.wordpiece.tokenize(text)
        return {
            "wordpiece_ids": ids.to_tensor(),
            "wordpiece_pieces": self.wordpiece.id_to_token(ids).to_tensor(default_value=""),
            "word_ids": self.word_tokenizer.tokenize(text).to_tensor(),
        }

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def detokenize_wordpiece(self, ids):
        return {"text": self.wordpiece.detokenize(ids)}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def detokenize_word(self, ids):
        return {"text": self.word_tokenizer.detokenize(ids)}


def test_saved_model_reloads_without_zoo(tmp_path, wordpiece, word_tokenizer):
    module = Exported(wordpiece, word_tokenizer)
    expected = {k: v.numpy().tolist() for k, v in module.tokenize(tf.constant(TEXTS)).items()}
    saved = tmp_path / "build" / "1"
    tf.saved_model.save(
        module,
        str(saved),
        signatures={
            "tokenize": module.tokenize,
            "detokenize_wordpiece": module.detokenize_wordpiece,
            "detokenize_word": module.detokenize_word,
        },
    )
    assert not (saved / "assets").exists() or not os.listdir(saved / "assets")
    moved = tmp_path / "elsewhere"
    shutil.move(str(saved), str(moved))
    shutil.rmtree(tmp_path / "build")

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(moved), json.dumps(TEXTS)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    result = json.loads(child.stdout.strip().splitlines()[-1])

    assert result["zoo_modules"] == []
    assert result["wordpiece_ids"] == expected["wordpiece_ids"]
    assert result["word_ids"] == expected["word_ids"]
    pieces = [[p for p in row if p] for row in result["wordpiece_pieces"]]  # drop padding
    assert pieces[0] == ["the", "cat", "sat", "on", "the", "mat", "."]
    assert pieces[1][:2] == ["the", "garden"] and pieces[1][-1] == "[UNK]"
    assert result["wordpiece_text"] == [
        t.decode() for t in wordpiece.detokenize(wordpiece.tokenize(tf.constant(TEXTS))).numpy()
    ]
    assert result["wordpiece_text"][1] == "the gardenbridge"
    assert result["word_text"][0] == "the cat sat on the mat ."
    assert result["word_text"][3] == "das madchen lauft uber die brucke ."
    assert result["empty_batch"] == [0, 0]
