"""GRID reader on a tiny generated corpus: sentence videos + align files in both usual places."""

import numpy as np
import pytest

from factorflow.data.readers import GridReader, detect_layout, open_reader, read_align

av = pytest.importorskip("av")


def write_mpg(path, frames, fps=25):
    """GRID ships MPEG-1 .mpg files; write one with PyAV's mpeg1video encoder."""
    with av.open(str(path), "w", format="mpeg") as out:
        stream = out.add_stream("mpeg1video", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def ramp(n, size=16):
    """Frame t is uniformly grey level 8 t, so decoded frames reveal their index."""
    return np.stack([np.full((size, size, 3), 8 * t, np.uint8) for t in range(n)])


ALIGN = "0 3000 sil\n3000 7500 bin\n7500 9000 sp\n9000 12000 blue\n12000 20000 sil\n"


@pytest.fixture
def grid_root(tmp_path):
    from factorflow.data.video_io import write_video

    root = tmp_path / "grid"
    (root / "s1" / "align").mkdir(parents=True)
    write_mpg(root / "s1" / "bbaf2n.mpg", ramp(20))
    (root / "s1" / "align" / "bbaf2n.align").write_text(ALIGN)
    (root / "s12").mkdir()
    (root / "align" / "s12").mkdir(parents=True)
    write_video(root / "s12" / "lgwa1s.mp4", ramp(20), fps=25)
    (root / "align" / "s12" / "lgwa1s.align").write_text("0 4000 sil\n4000 6000 at\n")
    write_video(root / "s12" / "nolabel.mp4", ramp(5), fps=25)  # no align file
    return root


def test_read_align_frames_and_silence(tmp_path):
    path = tmp_path / "x.align"
    path.write_text(ALIGN)
    words = read_align(path)
    assert [(w.word, w.start, w.stop) for w in words] == [("bin", 3, 8), ("blue", 9, 12)]
    path.write_text("0 1000\n")
    with pytest.raises(ValueError, match="x.align:1"):
        read_align(path)


def test_grid_word_clips(grid_root):
    assert detect_layout(grid_root) == "grid"
    reader = open_reader(grid_root)
    assert isinstance(reader, GridReader)
    assert [(r.word, r.speaker, r.start, r.stop) for r in reader.refs] == [
        ("bin", "s1", 3, 8),
        ("blue", "s1", 9, 12),
        ("at", "s12", 4, 6),
    ]
    assert reader.words == ["at", "bin", "blue"] and reader.speakers == ["s1", "s12"]
    clip = reader[1]
    assert clip.frames.shape == (3, 16, 16, 3) and clip.speaker == "s1"
    levels = clip.frames[:, 8, 8].mean(axis=1)
    assert np.abs(levels - 8 * np.arange(9, 12)).max() <= 4


def test_grid_centred_windows_and_sentences(grid_root):
    reader = GridReader(grid_root, clip_frames=6)
    assert [(r.start, r.stop) for r in reader.refs] == [(2, 8), (7, 13), (2, 8)]
    assert reader[0].frames.shape[0] == 6
    sentences = GridReader(grid_root, mode="sentences")
    assert len(sentences) == 3 and sentences.words == []
    assert sentences[2].frames.shape[0] == 5 and sentences[2].word is None


def test_grid_without_alignments_is_a_clear_error(tmp_path):
    from factorflow.data.video_io import write_video

    (tmp_path / "s3").mkdir()
    write_video(tmp_path / "s3" / "a.mp4", ramp(3), fps=25)
    with pytest.raises(ValueError, match=r"align"):
        open_reader(tmp_path, layout="grid")
