"""``python -m bench.slide``: the slide route's time on a dense synthetic slide (every tile tissue),
in-process through the handler, read by byte ranges from moto's server mode on 127.0.0.1 (a local
stand-in for S3). Writes build/bench/slide.json and the "whole slides" section of BENCHMARKS.md."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import date
from pathlib import Path

from bench.sections import replace_section
from bench.synthetic_slides import dense_patches, write_slide
from contract.apps import FakeLambdaContext, load_function_app, quiet_powertools
from local.events import json_event
from local.s3 import LocalS3
from local.template import REPO_ROOT


TITLE = "whole slides"


def _section(result: dict) -> str:
    width, height = result["level0"]
    return (f"## {TITLE}\n\nMeasured on {date.today().isoformat()} by `python -m bench.slide` "
            f"(threads: {result['threads']}). A dense synthetic slide (every tile a test patch, "
            "`bench/synthetic_slides.py`), read by byte ranges from moto on loopback through `POST /histopathology/slide`, "
            f"in process: level 0 {width:,} x {height:,} px at {result['level0_mpp']:g} µm/px ({result['file_mb']} MB deflate), "
            f"{result['tiles']:,} tissue tiles in {result['seconds_median']} s (median), "
            f"**{result['tiles_per_second']:,} tiles/s**. Details: [docs/whole-slides.md](docs/whole-slides.md).\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side-tiles", type=int, default=60, help="tiles a side at 4 µm/px (60: 12 x 12 mm)")
    parser.add_argument("--upsample", type=int, default=4, help="level 0 = 4 / upsample µm/px")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    quiet_powertools()
    data = Path(os.environ.get("ONCOSERVE_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))
    out = REPO_ROOT / "build" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    slide_path = out / "dense-slide.tif"
    write_slide(slide_path, dense_patches(data, args.side_tiles), upsample=args.upsample, margin_tiles=0)
    app = load_function_app("histopathology")
    with LocalS3() as s3:
        os.environ.update(s3.function_env)
        from oncoserve_runtime import s3_objects

        s3_objects._client.cache_clear()
        s3.client().upload_file(str(slide_path), s3.bucket, "dense.tif")
        event = json_event("/histopathology/slide", {"s3": {"bucket": s3.bucket, "key": "dense.tif"}, "ood": "report"})
        times, answer = [], {}
        for _ in range(args.repeats):
            started = time.perf_counter()
            response = app.lambda_handler(event, FakeLambdaContext())
            times.append(time.perf_counter() - started)
            answer = json.loads(response["body"])
            assert response["statusCode"] == 200, answer
    result = {"level0": [answer["slide"]["width"], answer["slide"]["height"]], "level0_mpp": answer["slide"]["mpp"],
              "file_mb": round(slide_path.stat().st_size / 1e6, 1), "tiles": answer["tiles"]["scored"],
              "seconds_median": round(statistics.median(times), 3),
              "tiles_per_second": round(answer["tiles"]["scored"] / statistics.median(times), 1),
              "threads": os.environ.get("ONCOSERVE_NUM_THREADS", "all")}
    (out / "slide.json").write_text(json.dumps(result, indent=2) + "\n")
    benchmarks = REPO_ROOT / "BENCHMARKS.md"
    benchmarks.write_text(replace_section(benchmarks.read_text(), TITLE, _section(result)))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
