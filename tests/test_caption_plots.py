import matplotlib.pyplot
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from zoo.plots import plot_caption_attention, upsample_attention

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    assert matplotlib.pyplot.get_fignums() == []
    yield
    assert matplotlib.pyplot.get_fignums() == []  # nothing registered with pyplot


def one_hot(shape, cell):
    grid = np.zeros(shape)
    grid[cell] = 1.0
    return grid


def test_upsample_without_smoothing_fills_exactly_the_cell():
    attention = one_hot((4, 4), (1, 2))
    upsampled = upsample_attention(attention, (64, 64), smooth=False)
    assert upsampled.shape == (64, 64) and upsampled.dtype == np.float32
    expected = np.zeros((64, 64), dtype=np.float32)
    expected[16:32, 32:48] = 1.0
    np.testing.assert_array_equal(upsampled, expected)


def test_upsample_without_smoothing_keeps_the_cells_weights():
    attention = np.array([[0.1, 0.2], [0.3, 0.4]])
    upsampled = upsample_attention(attention, (4, 6), smooth=False)
    np.testing.assert_allclose(upsampled, np.kron(attention / 0.4, np.ones((2, 3))), rtol=1e-6)


def test_upsample_smoothing_peaks_in_the_cell_and_falls_off():
    upsampled = upsample_attention(one_hot((4, 4), (1, 2)), (64, 64))
    assert upsampled.shape == (64, 64) and upsampled.dtype == np.float32
    assert upsampled.max() == pytest.approx(1.0)
    row, column = np.unravel_index(np.argmax(upsampled), upsampled.shape)
    assert 16 <= row < 32 and 32 <= column < 48
    assert np.all(upsampled >= 0)
    # Soft, not blocky: below the peak at the block's edge, still visible just outside it.
    assert 0.1 < upsampled[row, 48] < upsampled[row, 47] < upsampled[row, column]
    # Decreasing away from the block, along its row and its column, both ways.
    right, left = upsampled[row, column:], upsampled[row, column::-1]
    down, up = upsampled[row:, column], upsampled[row::-1, column]
    for profile in (right, left, down, up):
        assert np.all(np.diff(profile) <= 1e-7)
        assert profile[-1] < 0.05
    assert upsampled[0, 0] < 1e-3 and upsampled[63, 0] < 1e-3


def test_upsample_smoothing_of_a_corner_cell_peaks_in_the_corner():
    upsampled = upsample_attention(one_hot((4, 4), (0, 0)), (64, 64))
    row, column = np.unravel_index(np.argmax(upsampled), upsampled.shape)
    assert row < 16 and column < 16
    assert upsampled[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_upsample_uniform_attention_gives_a_flat_map():
    for smooth in (True, False):
        upsampled = upsample_attention(np.full((3, 3), 1 / 9), (20, 20), smooth=smooth)
        np.testing.assert_allclose(upsampled, 1.0, rtol=1e-6)


@pytest.mark.parametrize("smooth", [True, False])
def test_upsample_non_square_image_and_grid(smooth):
    # A 3 x 5 grid over a 30 x 50 image: cells of 10 x 10 pixels.
    upsampled = upsample_attention(one_hot((3, 5), (2, 1)), (30, 50), smooth=smooth)
    assert upsampled.shape == (30, 50)
    row, column = np.unravel_index(np.argmax(upsampled), upsampled.shape)
    assert 20 <= row < 30 and 10 <= column < 20
    assert upsampled.max() == pytest.approx(1.0)
    if not smooth:
        assert upsampled[20:30, 10:20].min() == 1.0
        assert upsampled.sum() == 100.0


def test_upsample_cells_with_fractional_edges():
    # 3 cells over 10 pixels: edges at 3.33 and 6.67; pixel 6 (centre 6.5) is in the middle cell.
    upsampled = upsample_attention(np.array([[0.0, 1.0, 0.0]]), (1, 10), smooth=False)
    np.testing.assert_array_equal(upsampled[0], [0, 0, 0, 1, 1, 1, 1, 0, 0, 0])


@pytest.mark.parametrize("smooth", [True, False])
def test_upsample_all_zero_stays_zero(smooth):
    upsampled = upsample_attention(np.zeros((4, 4)), (32, 48), smooth=smooth)
    assert upsampled.shape == (32, 48)
    assert not np.isnan(upsampled).any()
    assert np.all(upsampled == 0.0)


@pytest.mark.parametrize(
    "attention, image_shape, message",
    [
        (np.zeros(16), (64, 64), r"attention.shape=\(16,\)"),
        (np.zeros((2, 4, 4)), (64, 64), r"attention.shape=\(2, 4, 4\)"),
        (np.zeros((0, 4)), (64, 64), r"attention.shape=\(0, 4\)"),
        (np.zeros((4, 4)), (64,), r"image_shape=\(64,\)"),
        (np.zeros((4, 4)), (64, 64, 3), r"image_shape=\(64, 64, 3\)"),
        (np.zeros((4, 4)), (0, 64), r"image_shape=\(0, 64\)"),
        (np.zeros((4, 4)), 64, r"image_shape=64"),
        (np.full((2, 2), np.nan), (8, 8), "finite"),
    ],
)
def test_upsample_rejects_bad_shapes(attention, image_shape, message):
    with pytest.raises(ValueError, match=message):
        upsample_attention(attention, image_shape)


def gradient_image(height=48, width=64):
    rows, columns = np.mgrid[:height, :width]
    red = 255 * columns / (width - 1)
    green = 255 * rows / (height - 1)
    return np.stack([red, green, np.full_like(red, 200)], axis=-1).astype(np.uint8)


WORDS = ["a", "dog", "on", "grass"]


def caption_attention(steps, grid=4):
    attention = np.zeros((steps, grid, grid))
    for step in range(steps):
        attention[step].flat[step % (grid * grid)] = 1.0
    return attention


def image_axes(figure):
    return [ax for ax in figure.axes if ax.images]


def test_plot_caption_attention_writes_a_png(tmp_path):
    path = tmp_path / "plots" / "caption.png"
    figure = plot_caption_attention(
        gradient_image(), WORDS, caption_attention(5), path, title="example"
    )
    assert isinstance(figure, Figure)
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as png:
        width, height = png.size
    assert width > 0 and height > 0
    # Five panels in one row of about 2 inches (100 dpi), not a poster.
    assert 600 <= width <= 1400 and 100 <= height <= 500
    assert [p.name for p in path.parent.iterdir()] == ["caption.png"]
    assert len(image_axes(figure)) == len(WORDS) + 1 == len(figure.axes)


def test_plot_caption_attention_titles_and_no_ticks():
    figure = plot_caption_attention(gradient_image(), WORDS, caption_attention(4))
    axes = image_axes(figure)
    assert [ax.get_title() for ax in axes] == ["image", *WORDS]
    for ax in axes:
        assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0
    titled = plot_caption_attention(gradient_image(), WORDS, caption_attention(4), title="photo")
    assert image_axes(titled)[0].get_title() == "photo"


def test_plot_caption_attention_titles_the_images_share_when_a_sentinel_took_some():
    attention = caption_attention(3)
    attention[1] *= 0.42  # a sentinel took 0.58 of the second word's step
    figure = plot_caption_attention(gradient_image(), WORDS[:3], attention)
    titles = [ax.get_title() for ax in image_axes(figure)]
    assert titles == ["image", WORDS[0], f"{WORDS[1]} (image 0.42)", WORDS[2]]


def test_plot_caption_attention_accepts_bytes_words():
    figure = plot_caption_attention(
        gradient_image(), [b"\xc3\xa9t\xc3\xa9", b"dog"], np.ones((2, 9))
    )
    assert [ax.get_title() for ax in figure.axes[1:]] == ["été", "dog"]


def test_plot_caption_attention_panels_show_the_image_and_the_focus():
    image = np.full((40, 40, 3), 200, dtype=np.uint8)
    attention = np.stack([one_hot((2, 2), (0, 0)), one_hot((2, 2), (1, 1))])
    figure = plot_caption_attention(image, ["top", "bottom"], attention, smooth=False)
    plain, top, bottom = (np.asarray(ax.images[0].get_array()) for ax in figure.axes)
    assert plain.shape == top.shape == (40, 40, 3)
    np.testing.assert_allclose(plain, 200 / 255)
    # Attended quadrant as in the image, the rest darkened but not black.
    np.testing.assert_allclose(top[:20, :20], 200 / 255)
    assert np.all(top[20:, 20:] < 0.5 * 200 / 255) and np.all(top[20:, 20:] > 0)
    np.testing.assert_allclose(bottom[20:, 20:], 200 / 255)
    assert np.all(bottom[:20, :20] < 0.5 * 200 / 255)


def test_plot_caption_attention_accepts_flat_attention():
    grids = caption_attention(4)
    flat = plot_caption_attention(gradient_image(), WORDS, grids.reshape(4, 16))
    square = plot_caption_attention(gradient_image(), WORDS, grids)
    assert [ax.get_title() for ax in flat.axes] == ["image", *WORDS]
    for a, b in zip(flat.axes, square.axes, strict=True):
        np.testing.assert_array_equal(a.images[0].get_array(), b.images[0].get_array())


def test_plot_caption_attention_ignores_extra_steps():
    attention = caption_attention(7)
    attention[4:] = np.nan  # end token and padding: never looked at
    figure = plot_caption_attention(gradient_image(), WORDS, attention)
    assert len(figure.axes) == len(WORDS) + 1
    reference = plot_caption_attention(gradient_image(), WORDS, caption_attention(4))
    for a, b in zip(figure.axes, reference.axes, strict=True):
        np.testing.assert_array_equal(a.images[0].get_array(), b.images[0].get_array())


def test_plot_caption_attention_wraps_into_rows():
    figure = plot_caption_attention(gradient_image(), WORDS * 3, caption_attention(12), columns=4)
    assert len(figure.axes) == 13
    spec = figure.axes[0].get_subplotspec().get_gridspec()
    assert (spec.nrows, spec.ncols) == (4, 4)
    assert figure.axes[4].get_subplotspec().rowspan.start == 1


def test_plot_caption_attention_too_few_steps_raises(tmp_path):
    with pytest.raises(ValueError, match=r"4 words.*attention.shape=\(3, 4, 4\)"):
        plot_caption_attention(
            gradient_image(), WORDS, caption_attention(3), tmp_path / "out" / "c.png"
        )
    assert not (tmp_path / "out").exists()


def test_plot_caption_attention_empty_caption(tmp_path):
    path = tmp_path / "empty.png"
    figure = plot_caption_attention(gradient_image(), [], np.zeros((1, 4, 4)), path)
    assert len(figure.axes) == 1 and figure.axes[0].get_title() == "image"
    assert path.stat().st_size > 0
    assert len(plot_caption_attention(gradient_image(), [], np.zeros((0, 16))).axes) == 1


def test_plot_caption_attention_grayscale_and_pil_images():
    gray = gradient_image()[:, :, 1]
    figure = plot_caption_attention(gray, WORDS[:2], caption_attention(2))
    shown = np.asarray(figure.axes[0].images[0].get_array())
    assert shown.shape == (48, 64, 3)
    np.testing.assert_allclose(shown[:, :, 0], gray / 255)
    np.testing.assert_allclose(shown[:, :, 2], gray / 255)

    for pil in (Image.fromarray(gradient_image()), Image.fromarray(gray)):
        figure = plot_caption_attention(pil, WORDS[:2], caption_attention(2))
        shown = np.asarray(figure.axes[0].images[0].get_array())
        assert shown.shape == (48, 64, 3)
        np.testing.assert_allclose(shown, np.asarray(pil.convert("RGB")) / 255)


def test_plot_caption_attention_float_image_in_0_255():
    image = gradient_image().astype(np.float32)
    figure = plot_caption_attention(image, WORDS[:1], caption_attention(1))
    np.testing.assert_allclose(figure.axes[0].images[0].get_array(), image / 255, rtol=1e-6)


@pytest.mark.parametrize(
    "image, attention, message",
    [
        (np.zeros(10), caption_attention(2), r"image.shape=\(10,\)"),
        (np.zeros((2, 8, 8, 3)), caption_attention(2), r"image.shape=\(2, 8, 8, 3\)"),
        (np.zeros((8, 8, 2)), caption_attention(2), r"image.shape=\(8, 8, 2\)"),
        (gradient_image(), np.zeros((2, 15)), r"square grid.*attention.shape=\(2, 15\)"),
        (gradient_image(), np.zeros((2, 2, 4, 4)), r"attention.shape=\(2, 2, 4, 4\)"),
    ],
)
def test_plot_caption_attention_rejects_bad_inputs(image, attention, message):
    with pytest.raises(ValueError, match=message):
        plot_caption_attention(image, ["a", "b"], attention)


def test_plot_caption_attention_rejects_bad_columns():
    with pytest.raises(ValueError, match="columns=0"):
        plot_caption_attention(gradient_image(), ["a"], caption_attention(1), columns=0)
