"""A task registered from the test folder runs through `zoo run`, `zoo predict` and `zoo finetune`.

Nothing under `zoo/` knows it: `tests/tasks/reverse_task.py` is the whole task.
"""

import json

import pytest
import tensorflow as tf

from tests.tasks.processes import call_zoo
from zoo.tasks.base import Input, Signature

RECIPE = """\
task: reverse
name: rev
data: {size: 300, max_letters: 5}
model:
  embedding_dim: 16
  encoder: {units: 16}
  attention: {kind: additive, units: 16}
  decoder: {units: 32}
train: {batch_size: 32, epochs: 6, learning_rate: 0.01}
"""


@pytest.fixture
def reverse_task():
    from zoo import tasks
    from zoo.config import recipes

    tasks.register_task("reverse", "tests.tasks.reverse_task:ReverseTask")
    yield tasks.get_task("reverse")
    tasks.TASKS.pop("reverse", None)
    tasks._LOADED.pop("reverse", None)
    recipes._TASK_SCHEMAS.pop("reverse", None)


def test_a_task_from_outside_the_library_runs_end_to_end(
    reverse_task, tmp_path, capsys, monkeypatch
):
    (tmp_path / "reverse.yaml").write_text(RECIPE, encoding="utf-8")
    proc = call_zoo(capsys, monkeypatch, "run", "reverse.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "task: reverse" in proc.stdout  # the resolved recipe, in the task's schema order
    metrics = json.loads((tmp_path / "runs/rev/metrics.json").read_text())
    assert metrics["examples"] == 20 and metrics["epochs"] == 6
    export = tmp_path / "saved_models/rev"
    assert (export / "1/saved_model.pb").is_file()
    assert (export / "1/assets.extra/source_vocab.txt").is_file()

    proc = call_zoo(capsys, monkeypatch, "predict", export, "a b c", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    payload = json.loads(proc.stdout.strip())
    assert payload["source"] == "a b c" and set(payload) == {"source", "text", "tokens", "score"}
    assert set(payload["text"].split()) <= set("abcdefgh")
    proc = call_zoo(capsys, monkeypatch, "predict", export, "d e", cwd=tmp_path)
    assert proc.stdout.startswith("reversed: ")  # the task's own display

    import zoo

    model = zoo.load(export)
    assert model.reverse("a b").text == model("a b").text
    with pytest.raises(TypeError, match="is a reverse model; it has no translate"):
        model.translate("a b")
    with pytest.raises(ValueError, match="beam_size and max_length must be >= 1"):
        model("a b", beam_size=0)
    # Options by position too, in their declared order (beam_size, max_length).
    assert model.reverse("a b c", 1, 1).tokens == model("a b c", max_length=1).tokens
    assert len(model.reverse("a b c", 1, 1).tokens) <= 1

    proc = call_zoo(
        capsys, monkeypatch, "finetune", export, "--set", "train.epochs=1", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert (export / "2/saved_model.pb").is_file()
    tuned = json.loads((export / "2/assets.extra/metrics.json").read_text())
    assert "validation_before" in tuned["finetune"]
    proc = call_zoo(capsys, monkeypatch, "predict", export, "a b c", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.startswith("reversed: ")


def test_the_custom_task_names_its_own_parts(reverse_task):
    from zoo.config import RecipeError, resolve_recipe

    recipe = resolve_recipe({"task": "reverse"})
    assert list(recipe["finetune"]["learning_rate_multipliers"]) == list(
        reverse_task.finetune_policy.parts
    )
    with pytest.raises(RecipeError, match="learning_rate_multipliers.*cnn"):
        resolve_recipe({"task": "reverse"}, ["finetune.learning_rate_multipliers.cnn=0.1"])


def test_export_serves_a_signature_with_two_string_inputs(tmp_path):
    """What a task declares is what the export serves: two inputs need no branch."""
    from tests.tasks.reverse_task import Concatenator
    from zoo.export import atomic_export, serving_signatures

    module = Concatenator()
    signature = Signature("join", "join", (Input("first"), Input("second")))
    served = serving_signatures(module, [signature])
    assert set(served) == {"serving_default", "join"}
    path = atomic_export(module, tmp_path / "joiner", signatures=served, extras={})
    loaded = tf.saved_model.load(str(path))
    out = loaded.signatures["join"](first=tf.constant(["a", "b"]), second=tf.constant(["x", "y"]))
    assert [v.decode() for v in out["joined"].numpy()] == ["a | x", "b | y"]
    assert loaded.join(tf.constant(["c"]), tf.constant(["z"]))["joined"].numpy()[0] == b"c | z"


def test_the_default_inputs_of_a_two_input_signature():
    from zoo.tasks.base import Task

    signature = Signature("join", "join", (Input("first"), Input("second")))
    items, feeds, single = Task().prepare_inputs(signature, {"first": "a", "second": "b"})
    assert single and items == [{"first": "a", "second": "b"}]
    assert feeds["second"].numpy().tolist() == [b"b"]
    with pytest.raises(TypeError, match="takes its inputs by name: first, second"):
        Task().prepare_inputs(signature, "a")
