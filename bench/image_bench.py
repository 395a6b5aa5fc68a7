"""Wall time of a fresh bake and of a reuse, and the Packer runs for two identical creates.

Real Packer (Debian's) builds against a moto server on 127.0.0.1, through BakedImage's create,
as `pulumi up` would call it. Run from the repository root: venv/bin/python -m bench.image_bench
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from components.baked_image import BakedImageProvider, template_hash
from tests.call_recorder import CallRecorder
from tests.moto_server import FAKE_CREDENTIALS, start_moto

PROJECT_DIR = Path(__file__).resolve().parent.parent


def counting_packer(directory: Path) -> Path:
    """A `packer` first on PATH that counts its runs before running the real one."""
    real = shutil.which("packer")
    if real is None:
        sys.exit("packer is not installed: run ./scripts/setup")
    counter = directory / "runs"
    counter.write_text("")
    wrapper = directory / "packer"
    wrapper.write_text(f'#!/bin/sh\necho run >> "{counter}"\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    os.environ["PATH"] = f"{directory}:{os.environ['PATH']}"
    return counter


def main() -> None:
    os.environ.update(FAKE_CREDENTIALS)
    server, endpoint = start_moto(CallRecorder())
    props = {
        "region": "ap-northeast-1",
        "endpoint_url": endpoint,
        "app_name": "app",
        "color": "green",
        "version": "1.0.0",
        "template_dir": str(PROJECT_DIR / "image"),
        "template_hash": template_hash(PROJECT_DIR / "image"),
        "variables": {},
        "build_network": {},
        "build_source": "emulator",
        "build_timeout_seconds": 300,
    }
    with tempfile.TemporaryDirectory() as scratch:
        counter = counting_packer(Path(scratch))
        provider = BakedImageProvider()
        provider.create({**props, "version": "0.0.1"})  # warms moto's lazily loaded EC2 backend
        counter.write_text("")
        timings = {}
        for label in ("fresh bake", "reuse"):
            started = time.perf_counter()
            ami_id = provider.create(props).outs["ami_id"]
            timings[label] = time.perf_counter() - started
        runs = len(counter.read_text().split())
    server.stop()
    print(f"image {ami_id}, moto on {endpoint}")
    for label, seconds in timings.items():
        print(f"{label:>10}: {seconds:.3f} s")
    print(f"packer runs for two identical creates: {runs}")
    print(f"reuse is {timings['fresh bake'] / timings['reuse']:.0f}x faster than a bake")


if __name__ == "__main__":
    main()
