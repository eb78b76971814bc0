"""Generic video folders, single files, auto-detection and the errors of `open_reader`."""

import numpy as np
import pytest

from factorflow.data.readers import VideoFolderReader, detect_layout, open_reader


def test_video_folder_recursive(tmp_path):
    pytest.importorskip("av")
    from factorflow.data.video_io import write_video

    (tmp_path / "sub").mkdir()
    write_video(tmp_path / "bob.mp4", np.zeros((4, 12, 10, 3), np.uint8), fps=25)
    write_video(tmp_path / "sub" / "alice.mp4", np.full((6, 8, 8, 3), 200, np.uint8), fps=30)
    (tmp_path / "notes.txt").write_text("not a video")
    (tmp_path / ".bob.tmp-1.mp4").write_bytes(b"")  # an unfinished atomic write
    assert detect_layout(tmp_path) == "videos"
    reader = open_reader(tmp_path)
    assert isinstance(reader, VideoFolderReader)
    assert [r.clip_id for r in reader.refs] == ["bob", "sub/alice"]
    assert reader.speakers == ["alice", "bob"] and reader.words == []
    clip = reader[1]
    assert clip.frames.shape == (6, 8, 8, 3) and clip.speaker == "alice" and clip.word is None
    single = open_reader(tmp_path / "sub" / "alice.mp4")
    assert len(single) == 1 and single[0].clip_id == "alice"


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=rf"no clips found in {tmp_path}.*expected"):
        open_reader(tmp_path)
    for layout in ("lrw", "lrw-mp4", "grid", "videos"):
        with pytest.raises(ValueError, match=str(tmp_path)):
            open_reader(tmp_path, layout=layout)


def test_unknown_layout_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="unknown layout 'lrs3'"):
        open_reader(tmp_path, layout="lrs3")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_reader(tmp_path / "nowhere")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="not a video"):
        open_reader(tmp_path / "a.txt")
