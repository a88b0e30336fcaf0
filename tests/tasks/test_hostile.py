"""Hostile but fair use: big inputs, untrusted exports, concurrent runs, broken files, plain mistakes.

Each test names the failure it guards against; all use the tiny exports the
session trains once (`tests/tasks/conftest.py`).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.tasks.processes import call_zoo
from tests.tasks.test_translation import TINY
from zoo.config import resolve_recipe


@pytest.fixture(scope="module")
def trained(trained_translation):
    return trained_translation


def _copy_export(result, tmp_path, name="copy") -> Path:
    """A copy of the tiny translation export as `<tmp>/<name>/1`, to damage."""
    target = tmp_path / name / "1"
    shutil.copytree(result["export_dir"], target)
    return target


def _evil_export(result, tmp_path, written: Path) -> Path:
    """A zoo-looking export whose `translate` (and a resource created at load) writes `written`."""
    import tensorflow as tf

    class Creator(tf.saved_model.experimental.TrackableResource):
        def _create_resource(self):
            tf.io.write_file(str(written) + ".load", "created at load")
            return tf.raw_ops.HashTableV2(key_dtype=tf.string, value_dtype=tf.int64)

    class Evil(tf.Module):
        def __init__(self):
            super().__init__()
            self.resource = Creator()

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def translate(self, text):
            tf.io.write_file(str(written), "pwned")
            return {"translation": text}

    module = Evil()
    path = tmp_path / "evil" / "1"
    tf.saved_model.save(module, str(path), signatures={"translate": module.translate})
    shutil.copytree(Path(result["export_dir"]) / "assets.extra", path / "assets.extra")
    return path


# --- big inputs: bounded batches, input order, progress ---------------------------------------
def test_a_long_list_is_decoded_in_bounded_batches_in_input_order(trained):
    import zoo

    _, result, _ = trained
    model = zoo.load(result["export_dir"])
    words = "the old dog saw a big cat near the red house .".split()
    inputs = [" ".join(words[: 1 + (i * 7) % len(words)]) for i in range(70)]
    sizes = []
    call = model._call

    def recording(signature, batch, args, options):
        sizes.append(len(batch))
        return call(signature, batch, args, options)

    model._call = recording
    batched = model.translate(inputs, batch_size=8, beam_size=1)
    assert sizes and max(sizes) <= 8 and sum(sizes) == 70
    one_by_one = [model.translate(text, beam_size=1).text for text in inputs[:6]]
    assert [r.text for r in batched[:6]] == one_by_one
    streamed = list(model.stream(iter(inputs), batch_size=8, beam_size=1))
    assert [r.text for r in streamed] == [r.text for r in batched]


def test_a_huge_input_is_not_batched_with_many_others():
    from zoo.hub import BATCH_CHARACTERS, _batches

    lengths = [10] * 100 + [BATCH_CHARACTERS // 2] * 3 + [BATCH_CHARACTERS * 4]
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches = list(_batches(order, lengths, 64))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert [len(b) for b in batches] == [64, 36, 2, 1, 1]
    for batch in batches:  # the padded size stays bounded, except a lone huge input
        assert len(batch) == 1 or max(lengths[i] for i in batch) * len(batch) <= BATCH_CHARACTERS


def test_cli_predict_streams_a_file_with_progress_in_input_order(
    trained, tmp_path, capsys, monkeypatch
):
    import zoo

    _, result, _ = trained
    lines = [f"the dog saw {i % 7} cats ." if i % 3 else "a cat ." for i in range(240)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = call_zoo(
        capsys,
        monkeypatch,
        "predict",
        result["export_dir"],
        "--file",
        "in.txt",
        "--batch-size",
        "16",
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [p["source"] for p in printed] == lines
    expected = [r.text for r in zoo.load(result["export_dir"]).translate(lines[:5])]
    assert [p["text"] for p in printed[:5]] == expected
    assert "# predict: 240/240 inputs (100%)" in proc.stderr


def test_cli_predict_says_what_is_wrong_with_the_file(trained, tmp_path, capsys, monkeypatch):
    _, result, _ = trained
    (tmp_path / "latin1.txt").write_bytes("a cat .\nun caf\xe9 .\n".encode("latin-1"))
    (tmp_path / "empty.txt").write_text("")
    cases = {
        "missing.txt": "--file missing.txt: no such file",
        "latin1.txt": "--file latin1.txt, line 2: not UTF-8 text (byte 0xe9)",
        "empty.txt": "--file empty.txt is empty: nothing to predict",
    }
    for name, message in cases.items():
        proc = call_zoo(
            capsys, monkeypatch, "predict", result["export_dir"], "--file", name, cwd=tmp_path
        )
        assert proc.returncode == 2, name
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"zoo predict: {message}"), lines


# --- untrusted exports ------------------------------------------------------------------------
def test_an_export_that_writes_a_file_is_refused_and_nothing_is_written(
    trained, tmp_path, capsys, monkeypatch
):
    import zoo
    from zoo.security import UntrustedExportError

    _, result, _ = trained
    written = tmp_path / "written.txt"
    evil = _evil_export(result, tmp_path, written)
    with pytest.raises(UntrustedExportError, match="WriteFile.*signature 'translate'"):
        zoo.load(evil)
    for command in (["predict", str(evil), "a cat ."], ["evaluate", str(evil)]):
        proc = call_zoo(capsys, monkeypatch, *command, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "refused to run an export" in lines[0], lines
        assert "zoo inspect" in lines[0] and "--trust" in lines[0]
    assert not written.exists() and not Path(str(written) + ".load").exists()
    assert not (tmp_path / "runs").exists()

    proc = call_zoo(capsys, monkeypatch, "inspect", str(evil.parent), cwd=tmp_path)
    assert proc.returncode == 1
    assert "WriteFile (reads or writes files) in signature 'translate'" in proc.stdout
    assert "__inference__creator" in proc.stdout  # the function loading would run
    assert not written.exists()

    trusted = zoo.load(evil, trust=True)  # the user's explicit choice
    trusted.saved_model.signatures["translate"](text=__import__("tensorflow").constant(["x"]))
    assert written.read_text() == "pwned"


def test_inspect_lists_signatures_and_ops_of_a_clean_export(trained, tmp_path, capsys, monkeypatch):
    _, result, _ = trained
    proc = call_zoo(capsys, monkeypatch, "inspect", result["export_dir"], "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    scan = json.loads(proc.stdout)
    assert scan["flagged"] == []
    assert set(scan["signatures"]) == {"serving_default", "translate", "translate_options"}
    assert scan["signatures"]["translate"]["inputs"] == {"text": "string[?]"}
    assert "FastWordpieceTokenizeWithOffsets" in scan["ops"]["signature 'translate'"]
    assert "SaveV2" in scan["checkpoint_ops"]  # expected there, not flagged


def _edited_export(result, tmp_path, name, edit) -> Path:
    """A copy of the tiny export whose `saved_model.pb` `edit(meta_graph)` changed."""
    from tensorflow.core.protobuf import saved_model_pb2

    folder = _copy_export(result, tmp_path, name)
    model = saved_model_pb2.SavedModel()
    model.ParseFromString((folder / "saved_model.pb").read_bytes())
    edit(model.meta_graphs[0])
    (folder / "saved_model.pb").write_bytes(model.SerializeToString())
    return folder


def _signature_function(graph):
    return next(
        f for f in graph.graph_def.library.function if "signature_wrapper" in f.signature.name
    )


def test_the_scan_sees_through_crafted_graphs(trained, tmp_path):
    from zoo.security import ExportError, scan_export

    _, result, _ = trained

    def call_the_checkpoint_by_name(graph):  # the checkpoint's SaveV2, reached from a signature
        save = next(
            f.signature.name
            for f in graph.graph_def.library.function
            if f.signature.name.startswith("__inference__traced_save_")
        )
        _signature_function(graph).node_def.add(name="sneaky", op=save)

    def hide_a_dataset_graph(graph):
        _signature_function(graph).node_def.add(name="hidden", op="DatasetFromGraph")

    def tensorflow_1(graph):
        graph.ClearField("object_graph_def")

    findings = scan_export(_edited_export(result, tmp_path, "byname", call_the_checkpoint_by_name))
    assert any(f.op == "SaveV2" and "signature" in f.where for f in findings.findings)
    findings = scan_export(_edited_export(result, tmp_path, "dataset", hide_a_dataset_graph))
    assert [f.op for f in findings.findings] == ["DatasetFromGraph"] * len(findings.findings)
    assert findings.findings and "hidden in a string" in findings.findings[0].why
    with pytest.raises(ExportError, match="not a TensorFlow 2 SavedModel"):
        scan_export(_edited_export(result, tmp_path, "tf1", tensorflow_1))


# --- exports that cannot be loaded ------------------------------------------------------------
def test_a_damaged_export_is_one_clear_error_in_every_command(
    trained, tmp_path, capsys, monkeypatch
):
    _, result, _ = trained
    no_variables = _copy_export(result, tmp_path, "novars")
    shutil.rmtree(no_variables / "variables")
    truncated = _copy_export(result, tmp_path, "truncated")
    pb = truncated / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 3])
    for folder, fragment in (
        (no_variables, "cannot be loaded"),
        (truncated, "corrupt or truncated"),
    ):
        commands = [["predict", str(folder), "a cat ."], ["evaluate", str(folder)]]
        if folder is truncated:
            commands.append(["inspect", str(folder)])
        for command in commands:
            proc = call_zoo(capsys, monkeypatch, *command, cwd=tmp_path)
            lines = proc.stderr.strip().splitlines()
            assert proc.returncode == 2, (command, proc.stderr)
            assert len(lines) == 1 and fragment in lines[0], (command, lines)
            assert str(folder) in lines[0]
    assert not list(tmp_path.glob("runs/*/evaluate-*.json"))  # nothing "evaluated"


def test_a_lambda_layer_refused_by_keras_safe_mode_is_one_line(
    trained, tmp_path, capsys, monkeypatch
):
    import keras

    _, result, _ = trained
    folder = _copy_export(result, tmp_path, "lambda")
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(folder / "assets.extra" / "model.keras")
    proc = call_zoo(capsys, monkeypatch, "finetune", str(folder), cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "model.keras cannot be loaded" in lines[0] and "Lambda" in lines[0]


def test_evaluate_decodes_through_the_savedmodel(trained, tmp_path, monkeypatch):
    """What is scored is the SavedModel's decoding, not a model rebuilt from model.keras."""
    from zoo import runner
    from zoo.config import resolve_recipe as resolve

    _, result, _ = trained
    folder = _copy_export(result, tmp_path, "scored")
    recipe = resolve({"init_from": str(folder)}, [f"run.dir={tmp_path / 'runs'}"])
    calls = []
    import zoo.hub

    original = zoo.hub.LoadedModel.__init__

    def spy(self, path, **kwargs):
        original(self, path, **kwargs)
        function = self.saved_model.translate

        def counted(*args):
            calls.append(len(args))
            return function(*args)

        self.saved_model.translate = counted

    monkeypatch.setattr(zoo.hub.LoadedModel, "__init__", spy)
    metrics = runner.evaluate_export(recipe, log=lambda line: None)
    assert calls and metrics["examples"] == 20
    assert metrics["bleu"] == pytest.approx(
        json.loads((folder / "assets.extra/metrics.json").read_text())["bleu"], abs=1e-6
    )


# --- concurrent runs --------------------------------------------------------------------------
def _hold_lock(folder: Path) -> subprocess.Popen:
    script = (
        "import sys, time\n"
        "from zoo.run_lock import RunLock\n"
        f"with RunLock({str(folder)!r}):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=os.getcwd())
    deadline = time.time() + 60
    while time.time() < deadline:  # the lock file names its holder once it is held
        lock = folder / ".lock"
        if lock.exists() and f"process {holder.pid} " in lock.read_text():
            return holder
        time.sleep(0.1)
    holder.kill()
    raise AssertionError("the child never took the lock")


def test_a_second_run_of_a_recipe_refuses_before_any_work(tmp_path, capsys, monkeypatch):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(json.dumps({**TINY, "run": {"dir": "runs"}, "export": {"dir": "models"}}))
    holder = _hold_lock(tmp_path / "runs" / "tiny")
    try:
        started = time.time()
        proc = call_zoo(capsys, monkeypatch, "run", str(recipe), cwd=tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"is in use by process {holder.pid}" in lines[0], lines
    assert "runs/tiny" in lines[0] and time.time() - started < 30
    assert not (tmp_path / "runs" / "tiny" / "recipe.yaml").exists()
    assert not (tmp_path / "models").exists()


def test_the_lock_goes_with_its_process(tmp_path):
    from zoo.run_lock import RunLock

    holder = _hold_lock(tmp_path / "run")
    holder.kill()  # as kill -9: no clean-up runs
    holder.wait()
    with RunLock(tmp_path / "run"), RunLock(tmp_path / "run"):  # free, and re-entrant
        pass


def test_a_version_taken_while_exporting_moves_to_the_next(tmp_path, monkeypatch):
    import tensorflow as tf

    from zoo import export

    module = tf.Module()
    module.v = tf.Variable(1.0)
    base = tmp_path / "m"
    save = tf.saved_model.save

    def racing_save(obj, path, **kwargs):  # another process claims version 1 meanwhile
        save(obj, path, **kwargs)
        if not (base / "1").exists():
            save(obj, str(base / "1"))

    monkeypatch.setattr(tf.saved_model, "save", racing_save)
    assert export.atomic_export(module, base, signatures={}, extras={}) == base / "2"
    assert (base / "1" / "saved_model.pb").exists() and (base / "2" / "saved_model.pb").exists()

    def racing_explicit(obj, path, **kwargs):
        save(obj, path, **kwargs)
        if not (base / "5").exists():
            save(obj, str(base / "5"))

    monkeypatch.setattr(tf.saved_model, "save", racing_explicit)
    with pytest.raises(FileExistsError, match="this model is kept at") as caught:
        export.atomic_export(module, base, signatures={}, extras={}, version=5)
    kept = Path(str(caught.value).split("kept at ")[1].split(":")[0])
    assert (kept / "saved_model.pb").exists()  # the finished model is not thrown away


def test_stale_partial_exports_are_removed_but_live_ones_kept(tmp_path):
    from zoo import export

    base = tmp_path / "m"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    old = base / ".partial-3-abcd1234"  # written by an earlier zoo, killed
    killed = base / f".partial-next-p{dead_pid}-x1y2"
    live = base / f".partial-next-p{os.getppid()}-z9"  # another export still running
    for folder in (old, killed, live):
        folder.mkdir(parents=True)
    removed = export.remove_stale_partials(base)
    assert sorted(removed) == sorted([old, killed]) and live.exists()


def test_runs_log_the_stale_partials_they_remove(tmp_path):
    from zoo import runner

    recipe = resolve_recipe(
        TINY, [f"export.dir={tmp_path / 'models'}", f"run.dir={tmp_path / 'runs'}"]
    )
    (tmp_path / "models" / "tiny" / ".partial-1-deadbeef").mkdir(parents=True)
    logs = []
    runner.start_run(recipe, logs.append)
    assert any("removed" in line and ".partial-1-deadbeef" in line for line in logs)
    assert not (tmp_path / "models" / "tiny" / ".partial-1-deadbeef").exists()


# --- plain mistakes: one line, exit 2; --debug shows the traceback ---------------------------
def test_a_binary_recipe_is_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "model.bin").write_bytes(b"task: x\n\x89PNG\r\n\x1a\n\x00\xff")
    proc = call_zoo(capsys, monkeypatch, "run", "model.bin", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.bin" in lines[0] and "not UTF-8" in lines[0], lines


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(
    trained, tmp_path, capsys, monkeypatch
):
    import zoo.hub

    _, result, _ = trained

    def broken(*args, **kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(zoo.hub.LoadedModel, "stream", broken)
    proc = call_zoo(capsys, monkeypatch, "predict", result["export_dir"], "a cat .", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "zoo predict: unexpected RuntimeError: something inside broke "
        "(run again with --debug for the traceback, and report it)"
    ]
    with pytest.raises(RuntimeError, match="something inside broke"):
        call_zoo(
            capsys, monkeypatch, "predict", result["export_dir"], "a cat .", "--debug", cwd=tmp_path
        )


def test_tensorflow_starts_quietly_on_a_machine_without_a_gpu(trained, tmp_path):
    _, result, _ = trained
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    proc = subprocess.run(
        [sys.executable, "-m", "zoo.cli", "predict", result["export_dir"], "a cat ."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Only the zoo's own lines (a tiny model's truncation warnings) are left.
    assert all(line.startswith("zoo predict: ") for line in proc.stderr.splitlines()), proc.stderr
    assert proc.stdout.strip()


def test_a_lone_truncated_image_is_named(trained_captioning, tmp_path, capsys, monkeypatch):
    from zoo.data.synthetic_scenes import generate_scenes

    _, result, _ = trained_captioning
    png = generate_scenes(1, seed=1, image_size=48)[0].image
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    proc = call_zoo(capsys, monkeypatch, "predict", result["export_dir"], "cut.png", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert "cut.png" in lines[0] and "could not be decoded" in lines[0]
    assert "Dataset was empty" not in proc.stderr


def test_inputs_too_big_to_decode_are_refused_before_decoding(trained, tmp_path):
    import struct
    import zlib

    import zoo
    from zoo.security import ExportError
    from zoo.tasks.captioning.results import encoded_image

    _, result, _ = trained
    model = zoo.load(result["export_dir"])
    huge = "word " * 250_000
    with pytest.raises(ValueError, match="input 1 is 1,250,000 characters long"):
        model.translate(huge)
    with pytest.raises(ValueError, match="input 3 is 1,250,000 characters long"):
        model.translate(["a cat .", "a dog .", huge])

    def png_header(width, height) -> bytes:  # a PNG that claims a size (a small file, a huge image)
        def chunk(kind, data):
            crc = zlib.crc32(kind + data) & 0xFFFFFFFF
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

        size = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", size) + chunk(b"IDAT", zlib.compress(b""))

    (tmp_path / "bomb.png").write_bytes(png_header(20_000, 20_000))  # past PIL's own limit
    with pytest.raises(ValueError, match=r"bomb\.png has more than the 50,000,000 pixels"):
        encoded_image(tmp_path / "bomb.png")
    (tmp_path / "big.png").write_bytes(png_header(10_000, 6_000))  # under PIL's, over ours
    with pytest.raises(ValueError, match=r"big\.png has .*pixels .* \(10,000 x 6,000\)"):
        encoded_image(tmp_path / "big.png")

    def rename_the_signature(graph):
        graph.signature_def["other"].CopyFrom(graph.signature_def["translate"])
        del graph.signature_def["translate"]

    folder = _edited_export(result, tmp_path, "renamed", rename_the_signature)
    with pytest.raises(ExportError, match="without the signature translate"):
        zoo.load(folder)


def test_a_caption_cut_at_max_length_warns(trained_captioning, tmp_path):
    import zoo
    from zoo.data.synthetic_scenes import generate_scenes

    _, result, _ = trained_captioning
    (tmp_path / "scene.png").write_bytes(generate_scenes(1, seed=3, image_size=48)[0].image)
    model = zoo.load(result["export_dir"])
    with pytest.warns(zoo.TruncationWarning, match=r"image 1 \('.*scene\.png'\): the caption hit"):
        cut = model.caption(tmp_path / "scene.png", beam_size=1, max_length=1)
    assert cut.truncated and len(cut.tokens) == 1
