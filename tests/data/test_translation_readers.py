from pathlib import Path

import pytest

from zoo.data.translation_readers import (
    DataFormatError,
    ReadReport,
    read_parallel_files,
    read_tsv_pairs,
)

SAMPLE_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "translation"


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture
def messy_tsv(tmp_path):
    lines = [
        b"\xef\xbb\xbfGo.\tGeh.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272\r\n",
        b"Hi.\tHallo!\r\n",
        b"only one column\n",
        b"\n",
        b"   \tleer\n",
        b"empty target\t  \n",
        b"bad \xff bytes\tkaputt\n",
        b"  Run!  \t  Lauf!  \n",
        b"I know.\tIch wei\xc3\x9f.",  # no final line end
    ]
    return write(tmp_path / "deu.tsv", b"".join(lines))


def test_tsv_reports_each_kind_of_malformed_line(messy_tsv):
    pairs, report = read_tsv_pairs(messy_tsv)
    assert pairs == [
        ("Go.", "Geh."),
        ("Hi.", "Hallo!"),
        ("Run!", "Lauf!"),
        ("I know.", "Ich weiß."),
    ]
    assert (report.lines, report.kept) == (9, 4)
    assert report.malformed == [
        (3, "expected at least 2 tab-separated columns, found 1"),
        (4, "empty line"),
        (5, "empty source (column 0)"),
        (6, "empty target (column 1)"),
        (7, "invalid UTF-8 (byte 0xff at position 5)"),
    ]
    assert report.path == str(messy_tsv)
    assert report.summary() == (
        "deu.tsv: 9 lines, 4 pairs kept, 5 malformed (line 3: expected at least 2 "
        "tab-separated columns, found 1; line 4: empty line; line 5: empty source (column 0); "
        "line 6: empty target (column 1); line 7: invalid UTF-8 (byte 0xff at position 5))"
    )


def test_summary_shows_at_most_five_malformed_lines():
    report = ReadReport("x/a.tsv", 10, 3, [(n, "empty line") for n in range(1, 8)])
    assert report.summary().endswith("line 5: empty line; and 2 more)")
    assert ReadReport("a.tsv", 2, 2, []).summary() == "a.tsv: 2 lines, 2 pairs kept, 0 malformed"


def test_tsv_column_choice_and_reverse(messy_tsv):
    pairs, _ = read_tsv_pairs(messy_tsv, columns=(1, 0))
    assert pairs[0] == ("Geh.", "Go.")
    assert read_tsv_pairs(messy_tsv, reverse=True)[0] == pairs
    # The attribution column exists on the first line only.
    pairs, report = read_tsv_pairs(messy_tsv, columns=(2, 0))
    assert pairs == [("CC-BY 2.0 (France) Attribution: tatoeba.org #2877272", "Go.")]
    assert (8, "expected at least 3 tab-separated columns, found 2") in report.malformed
    pairs, _ = read_tsv_pairs(messy_tsv, columns=(0, 2), reverse=True)
    assert pairs == [("CC-BY 2.0 (France) Attribution: tatoeba.org #2877272", "Go.")]


def test_tsv_max_pairs_stops_early(messy_tsv):
    pairs, report = read_tsv_pairs(messy_tsv, max_pairs=3)
    assert len(pairs) == 3 and report.kept == 3
    assert report.lines == 8


def test_tsv_strict_mode_raises_on_the_first_malformed_line(messy_tsv):
    with pytest.raises(DataFormatError, match=r"deu\.tsv, line 3: expected at least 2"):
        read_tsv_pairs(messy_tsv, strict=True)
    clean = messy_tsv.with_name("clean.tsv")
    clean.write_text("a\tb\nc\td\n", encoding="utf-8")
    assert read_tsv_pairs(clean, strict=True)[0] == [("a", "b"), ("c", "d")]


def test_tsv_errors_name_the_file(tmp_path):
    missing = tmp_path / "nothing_here.tsv"
    with pytest.raises(FileNotFoundError, match="nothing_here.tsv"):
        read_tsv_pairs(missing)
    useless = write(tmp_path / "useless.tsv", b"no tabs\n\n\tx\n")
    with pytest.raises(DataFormatError, match=r"useless\.tsv: no usable sentence pairs"):
        read_tsv_pairs(useless)
    with pytest.raises(DataFormatError, match="empty.tsv"):
        read_tsv_pairs(write(tmp_path / "empty.tsv", b""))
    assert issubclass(DataFormatError, ValueError)


@pytest.mark.parametrize("columns", [(0, 0), (0,), (-1, 1), (0, 1, 2), ("0", "1")])
def test_tsv_rejects_bad_columns(messy_tsv, columns):
    with pytest.raises(ValueError, match="columns"):
        read_tsv_pairs(messy_tsv, columns=columns)


def test_max_pairs_must_be_positive(messy_tsv):
    with pytest.raises(ValueError, match="max_pairs=0"):
        read_tsv_pairs(messy_tsv, max_pairs=0)


def test_parallel_files(tmp_path):
    source = write(tmp_path / "train.src", b"\xef\xbb\xbfone\r\ntwo\n\nfour\nbad \xc3\n  six  \n")
    target = write(tmp_path / "train.tgt", b"eins\r\nzwei\ndrei\n\nfuenf\n  sechs  ")
    pairs, report = read_parallel_files(source, target)
    assert pairs == [("one", "eins"), ("two", "zwei"), ("six", "sechs")]
    assert (report.lines, report.kept) == (6, 3)
    assert report.malformed == [
        (3, "empty source"),
        (4, "empty target"),
        (5, "source: invalid UTF-8 (byte 0xc3 at position 5)"),
    ]
    assert (report.path, report.target_path) == (str(source), str(target))
    assert report.summary().startswith("train.src + train.tgt: 6 lines, 3 pairs kept, 3 malformed")
    assert read_parallel_files(source, target, max_pairs=2)[0] == pairs[:2]
    with pytest.raises(DataFormatError, match=r"train\.src \+ .*train\.tgt, line 3: empty source"):
        read_parallel_files(source, target, strict=True)


def test_parallel_files_must_have_the_same_number_of_lines(tmp_path):
    source = write(tmp_path / "a.src", b"one\ntwo\nthree\n")
    target = write(tmp_path / "a.tgt", b"eins\nzwei\n")
    with pytest.raises(DataFormatError) as info:
        read_parallel_files(source, target)
    message = str(info.value)
    assert str(source) in message and str(target) in message
    assert "has 3" in message and "has 2" in message


def test_parallel_files_errors(tmp_path):
    source = write(tmp_path / "a.src", b"\n\n")
    target = write(tmp_path / "a.tgt", b"x\n\n")
    with pytest.raises(DataFormatError, match="no usable sentence pairs"):
        read_parallel_files(source, target)
    with pytest.raises(FileNotFoundError, match="missing.tgt"):
        read_parallel_files(source, tmp_path / "missing.tgt")


@pytest.fixture
def sample():
    path = SAMPLE_DIR / "deu_eng_sample.tsv"
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"../shared/data is absent: no real data sample at {SAMPLE_DIR}")
    return path


def test_real_tatoeba_sample(sample):
    pairs, report = read_tsv_pairs(sample)
    assert (report.lines, report.kept, report.malformed) == (4994, 4994, [])
    assert len(pairs) == 4994
    assert pairs[0] == ("I know.", "Ich weiß.")
    assert report.summary() == "deu_eng_sample.tsv: 4994 lines, 4994 pairs kept, 0 malformed"
    swapped, _ = read_tsv_pairs(sample, columns=(1, 0))
    assert swapped[0] == ("Ich weiß.", "I know.")
    assert swapped == [(t, s) for s, t in pairs]
    assert read_tsv_pairs(sample, reverse=True)[0] == swapped
    assert read_tsv_pairs(sample, max_pairs=100, strict=True)[0] == pairs[:100]
