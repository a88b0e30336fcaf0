import os
import struct

import numpy as np
import pytest
from matplotlib.figure import Figure

from zoo.plots import plot_attention, plot_bleu_by_length

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    data = open(path, "rb").read(24)
    assert data[:8] == PNG_MAGIC
    return struct.unpack(">II", data[16:24])  # IHDR width, height


def tokens(prefix, count):
    return [f"{prefix}{i}" for i in range(count)]


def uniform(rows, columns):
    return np.full((rows, columns), 1.0 / columns)


def test_plot_attention_writes_a_png(tmp_path):
    path = tmp_path / "deep" / "folder" / "attention.png"
    figure = plot_attention(
        uniform(3, 4), ["le", "chat", "noir", "[END]"], ["the", "black", "cat"], path
    )
    assert isinstance(figure, Figure)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 1000
    width, height = png_size(path)
    assert 150 <= width <= 1200 and 150 <= height <= 1200
    assert os.listdir(path.parent) == ["attention.png"]  # no temporary left behind


def test_plot_attention_size_grows_with_the_sentence(tmp_path):
    plot_attention(uniform(5, 5), tokens("s", 5), tokens("t", 5), tmp_path / "small.png")
    plot_attention(uniform(60, 60), tokens("s", 60), tokens("t", 60), tmp_path / "big.png")
    small, big = png_size(tmp_path / "small.png"), png_size(tmp_path / "big.png")
    assert big[0] > 2 * small[0] and big[1] > 2 * small[1]
    # 60 tokens at 100 dpi: at least ~20 px per row and column, not a poster.
    assert 60 * 20 <= big[0] <= 4000 and 60 * 20 <= big[1] <= 4000


def test_plot_attention_tick_labels_are_the_tokens():
    source = ["[START]", "das", "ha", "##us", "[END]"]
    target = ["the", "house", "[END]"]
    figure = plot_attention(uniform(3, 5), source, target, title="example")
    ax = figure.axes[0]
    assert [label.get_text() for label in ax.get_xticklabels()] == source
    assert [label.get_text() for label in ax.get_yticklabels()] == target
    assert ax.xaxis.get_ticks_position() == "top"
    assert all(label.get_rotation() == 90 for label in ax.get_xticklabels())
    assert ax.get_title() == "example"
    assert len(figure.axes) == 2  # the heatmap and its colorbar


def test_plot_attention_accepts_bytes_tokens():
    figure = plot_attention(uniform(1, 2), [b"\xc3\xa9t\xc3\xa9", b"[END]"], [b"summer"])
    assert [label.get_text() for label in figure.axes[0].get_xticklabels()] == ["été", "[END]"]


def test_plot_attention_trims_padded_weights():
    weights = np.arange(6 * 7, dtype=float).reshape(6, 7) / 42
    figure = plot_attention(weights, tokens("s", 5), tokens("t", 4))
    drawn = np.asarray(figure.axes[0].images[0].get_array())
    assert drawn.shape == (4, 5)
    np.testing.assert_allclose(drawn, weights[:4, :5])


def test_plot_attention_into_given_axes(tmp_path):
    figure = Figure()
    ax = figure.add_subplot()
    returned = plot_attention(uniform(2, 2), ["a", "b"], ["x", "y"], tmp_path / "a.png", ax=ax)
    assert returned is figure
    assert ax.images and (tmp_path / "a.png").stat().st_size > 0


@pytest.mark.parametrize(
    "shape, source, target, message",
    [
        ((2, 3), 4, 2, r"at least \(2, 4\).*weights.shape=\(2, 3\)"),
        ((2, 3), 3, 5, r"at least \(5, 3\).*weights.shape=\(2, 3\)"),
        ((3,), 3, 1, r"weights.shape=\(3,\)"),
    ],
)
def test_plot_attention_rejects_weights_smaller_than_the_tokens(shape, source, target, message):
    with pytest.raises(ValueError, match=message):
        plot_attention(np.zeros(shape), tokens("s", source), tokens("t", target))


def test_plot_attention_bad_shape_writes_nothing(tmp_path):
    with pytest.raises(ValueError):
        plot_attention(np.zeros((1, 1)), ["a", "b"], ["x"], tmp_path / "out" / "a.png")
    assert not (tmp_path / "out").exists()


def rows(scores):
    labels = ["1-10", "11-20", "21-30", "31+"]
    return [
        {"bucket": b, "count": 0 if s is None else 3, "bleu": s}
        for b, s in zip(labels, scores, strict=True)
    ]


def test_plot_bleu_by_length(tmp_path):
    path = tmp_path / "plots" / "bleu.png"
    figure = plot_bleu_by_length(
        {"additive": rows([30.0, 28.0, 25.0, None]), "none": rows([29.0, 20.0, 12.0, None])}, path
    )
    assert path.read_bytes()[:8] == PNG_MAGIC
    ax = figure.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["additive", "none"]
    assert [label.get_text() for label in ax.get_xticklabels()] == [
        "1-10\n(n=3)",
        "11-20\n(n=3)",
        "21-30\n(n=3)",
        "31+\n(n=0)",
    ]
    assert np.isnan(ax.get_lines()[0].get_ydata()[-1])  # empty bucket: a gap
    assert ax.get_ylabel() == "BLEU"


def test_plot_bleu_by_length_needs_matching_buckets():
    other = [{"bucket": "1-5", "count": 1, "bleu": 3.0}]
    with pytest.raises(ValueError, match="same buckets"):
        plot_bleu_by_length({"a": rows([1.0, 2.0, 3.0, 4.0]), "b": other})
    with pytest.raises(ValueError, match="at least one series"):
        plot_bleu_by_length({})
