"""Video read/write with PyAV: round trips, audio carry-over, clear errors, atomic writes."""

import numpy as np
import pytest

from factorflow.data.video_io import (
    UnreadableMediaError,
    has_audio,
    iter_video,
    read_video,
    video_info,
    write_video,
)

av = pytest.importorskip("av")


def smooth_frames(n=8, h=32, w=48):
    """Smooth moving gradients: H.264 at crf 18 keeps them within a few grey levels."""
    y, x = np.mgrid[0:h, 0:w]
    frames = [
        np.stack([(x * 4 + 5 * t) % 256, (y * 6) % 256, np.full_like(x, 30 * t % 256)], -1)
        for t in range(n)
    ]
    return np.asarray(frames, np.uint8)


def write_with_audio(path, seconds=1.0, rate=16000):
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 16, 16, "yuv420p"
        audio = out.add_stream("aac", rate=rate)
        for t in range(int(25 * seconds)):
            frame = av.VideoFrame.from_ndarray(np.full((16, 16, 3), t, np.uint8), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        tone = np.sin(np.arange(int(rate * seconds)) * 0.1).astype(np.float32)[None] * 0.3
        samples = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
        samples.sample_rate = rate
        for packet in audio.encode(samples):
            out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)


def test_mp4_round_trip(tmp_path):
    frames = smooth_frames()
    write_video(tmp_path / "a.mp4", frames, fps=30000 / 1001)
    decoded, fps = read_video(tmp_path / "a.mp4")
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    assert fps == pytest.approx(29.97, abs=0.01)
    assert np.abs(decoded.astype(int) - frames).mean() < 3
    assert not has_audio(tmp_path / "a.mp4")
    assert len(read_video(tmp_path / "a.mp4", max_frames=3)[0]) == 3
    assert sum(1 for _ in iter_video(tmp_path / "a.mp4")) == 8
    info = video_info(tmp_path / "a.mp4")
    assert (info.width, info.height, info.num_frames) == (48, 32, 8)
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_odd_size_is_padded_for_mp4(tmp_path):
    write_video(tmp_path / "odd.mp4", smooth_frames(3, 15, 21), fps=25)
    assert read_video(tmp_path / "odd.mp4")[0].shape == (3, 16, 22, 3)


def test_gif_round_trip(tmp_path):
    frames = np.zeros((4, 10, 12, 3), np.uint8)
    frames[:, :, :6] = [255, 0, 0]
    frames[1:, 5:] = [0, 0, 255]
    write_video(tmp_path / "a.gif", frames, fps=10)
    decoded, fps = read_video(tmp_path / "a.gif")
    assert decoded.shape == (4, 10, 12, 3) and fps == pytest.approx(10)
    assert np.abs(decoded.astype(int) - frames).max() <= 40  # rgb8 palette quantisation


def test_audio_is_carried_into_mp4(tmp_path):
    write_with_audio(tmp_path / "talk.mp4")
    assert has_audio(tmp_path / "talk.mp4")
    write_video(tmp_path / "out.mp4", smooth_frames(10), fps=25, audio_from=tmp_path / "talk.mp4")
    assert has_audio(tmp_path / "out.mp4")
    with av.open(str(tmp_path / "out.mp4")) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        duration = float(stream.duration * stream.time_base)
    assert duration < 0.8  # cut near the 0.4 s of video, not the 1 s of source audio
    write_video(tmp_path / "silent.mp4", smooth_frames(2), fps=25)
    write_video(tmp_path / "b.mp4", smooth_frames(2), fps=25, audio_from=tmp_path / "silent.mp4")
    assert not has_audio(tmp_path / "b.mp4")


def test_unreadable_videos_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(UnreadableMediaError, match="empty.mp4"):
        read_video(tmp_path / "empty.mp4")
    (tmp_path / "noise.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(UnreadableMediaError, match="noise.mp4"):
        read_video(tmp_path / "noise.mp4")
    with av.open(str(tmp_path / "zero.mp4"), "w") as out:  # a header and no frame
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        out.start_encoding()
    with pytest.raises(UnreadableMediaError, match="zero.mp4"):
        read_video(tmp_path / "zero.mp4")
    write_with_audio(tmp_path / "talk.mp4")
    with (
        av.open(str(tmp_path / "talk.mp4")) as source,
        av.open(str(tmp_path / "a.m4a"), "w") as out,
    ):
        audio = out.add_stream_from_template(source.streams.audio[0])
        for packet in source.demux(source.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = audio
                out.mux(packet)
    with pytest.raises(UnreadableMediaError, match="a.m4a has no video stream"):
        read_video(tmp_path / "a.m4a")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"expected a \.mp4 or \.gif"):
        write_video(tmp_path / "a.avi", smooth_frames(1), fps=25)
    with pytest.raises(ValueError, match=r"uint8 \[N, H, W, 3\]"):
        write_video(tmp_path / "a.mp4", smooth_frames(1).astype(np.float32), fps=25)
    with pytest.raises(ValueError, match="fps"):
        write_video(tmp_path / "a.mp4", smooth_frames(1), fps=0)
    write_video(tmp_path / "a.mp4", smooth_frames(2), fps=25)
    with pytest.raises(ValueError, match="--max-frames 0"):
        read_video(tmp_path / "a.mp4", max_frames=0)


def test_failed_write_leaves_target_untouched(tmp_path, monkeypatch):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"previous")
    calls = []

    def failing(image, format):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("disk full")
        return original(image, format=format)

    original = av.VideoFrame.from_ndarray
    monkeypatch.setattr(av.VideoFrame, "from_ndarray", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        write_video(target, smooth_frames(5), fps=25)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.mp4"]


def test_one_writer_streams_frames_as_write_video_writes_them(tmp_path):
    from factorflow.data.video_io import VideoSink
    from factorflow.io import OutputExistsError
    from factorflow.reenact import streaming

    assert streaming.VideoSink is VideoSink  # reenact streams through the same writer
    frames = smooth_frames(6, 15, 21)
    write_video(tmp_path / "whole.mp4", frames, fps=25)
    sink = VideoSink(tmp_path / "streamed.mp4", 25)
    for frame in frames:
        sink.write(frame)
    assert sink.close() == tmp_path / "streamed.mp4"
    whole, _ = read_video(tmp_path / "whole.mp4")
    streamed, _ = read_video(tmp_path / "streamed.mp4")
    assert np.array_equal(whole, streamed) and whole.shape == (6, 16, 22, 3)
    with pytest.raises(OutputExistsError, match="exists"):
        VideoSink(tmp_path / "whole.mp4", 25, replace=False)
    sink = VideoSink(tmp_path / "c.mp4", 25)
    sink.write(frames[0])
    with pytest.raises(ValueError, match=r"frame 1 of .*c.mp4 is \(8, 8, 3\)"):
        sink.write(frames[1, :8, :8])
    sink.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamed.mp4", "whole.mp4"]
