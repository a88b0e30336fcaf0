"""Every registered task honours the same contract, through the same runner.

tiny train -> export -> move the export -> plain `tf.saved_model.load` in a
process without zoo (every declared signature, with and without options)
-> predict with `zoo.load` -> fine-tune the moved export -> the new version
predicts too.
"""

import io
import json
import shutil
import textwrap

import pytest

from tests.tasks.processes import run_python
from zoo import runner
from zoo.config import resolve_recipe
from zoo.tasks import TASKS, get_task


def _scene_jpeg() -> bytes:
    from PIL import Image

    from zoo.data.synthetic_scenes import generate_scenes

    scene = generate_scenes(1, seed=7, image_size=64)[0]
    with Image.open(io.BytesIO(scene.image)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# One input per task, as Python callers give it; `None`: the image file below.
SAMPLES = {
    "translation": "the dog saw a cat .",
    "parsing": "the dog saw a cat .",
    "captioning": None,
}
# The registry as the library ships it (a test may register more, for itself).
LIBRARY_TASKS = tuple(TASKS)


def test_every_registered_task_has_a_sample():
    """A task added to the registry joins the contract: it needs a sample input here."""
    assert sorted(SAMPLES) == sorted(LIBRARY_TASKS)


@pytest.mark.parametrize("task_name", LIBRARY_TASKS)
def test_task_contract(task_name, request, tmp_path):
    recipe, result, logs = request.getfixturevalue(f"trained_{task_name}")
    task = get_task(task_name)
    assert task.signatures, "a task declares what its export serves"
    assert any(line.startswith("export: ") for line in logs)

    moved = tmp_path / "elsewhere" / "tiny"
    shutil.copytree(result["export_dir"], moved / "1")
    sample = SAMPLES[task_name]
    if sample is None:
        image = tmp_path / "scene.jpg"
        image.write_bytes(_scene_jpeg())
        sample = str(image)
    feed = f"open({sample!r}, 'rb').read()" if SAMPLES[task_name] is None else repr(sample)
    calls = [(s.name, s.inputs[0].name, bool(s.options)) for s in task.signatures]
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.modules["zoo"] = None  # `import zoo` now fails
        import tensorflow as tf
        import tensorflow_text  # registers the tokenizer ops
        m = tf.saved_model.load({str(moved / "1")!r})
        report = {{}}
        for name, input_name, has_options in {calls!r}:
            x = tf.constant([{feed}])
            out = m.signatures[name](**{{input_name: x}})
            strings = {{k: v.numpy()[0].decode() for k, v in out.items()
                       if v.dtype == tf.string and len(v.shape) == 1}}
            assert "attention" in out and out["attention"].shape[0] == 1
            assert getattr(m, name)(x).keys() == out.keys()  # the attribute serves too
            if has_options:
                short = m.signatures[name + "_options"](
                    **{{input_name: x}}, beam_size=tf.constant(1), max_length=tf.constant(3))
                assert short["tokens"].shape[1] <= 3, short["tokens"].shape
            report[name] = strings
        assert not any(n.startswith("zoo") for n in sys.modules if sys.modules[n] is not None)
        print(json.dumps(report))
        """
    )
    proc = run_python(script, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])

    import zoo

    model = zoo.load(moved)
    first = task.signatures[0].name
    predicted = model(sample)
    assert predicted.text in report[first].values()  # the same graph, in and out of zoo
    assert getattr(model, first)([sample])[0].text == predicted.text
    assert set(predicted.to_json()) >= {"text", "tokens", "score"}
    assert isinstance(predicted.display(), str)

    settings = [f"run.dir={tmp_path / 'runs'}"]
    tuned = resolve_recipe({"init_from": str(moved), "train": {"epochs": 1}}, settings)
    tuned_result = runner.finetune(tuned, log=lambda *_: None)
    assert tuned_result["export_dir"] == str(moved / "2")
    assert "validation_after" in tuned_result["metrics"]["finetune"]
    again = zoo.load(moved)
    assert again.path.name == "2"
    assert isinstance(again(sample).text, str)
