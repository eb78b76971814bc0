"""Data for factorflow: clip readers (LRW, GRID, plain videos), the PyTorch datasets over them,
video I/O, real-video preprocessing (landmarks, alignment, crops) and the synthetic generator.

Submodules are imported explicitly (`factorflow.data.readers`, `factorflow.data.dataset`,
`factorflow.data.video_io`, `factorflow.data.prepare`, `factorflow.data.synth`) so that importing
this package pulls in no optional dependency (PyAV, MediaPipe, OpenCV).
"""
