#!/usr/bin/env python3
"""granite-data prepare throughput and thread scaling on real code.

    python3 benchmarks/bench_data_prepare.py GRANITE_DATA TOKENIZER WORKDIR THREADS INPUT [INPUT ...]

Runs `granite-data prepare` on the same inputs once per thread count (THREADS: comma-separated, e.g. 1,2,4,8,16),
each into a fresh output directory under WORKDIR, after one untimed warm-up run that fills the page cache. Prints one
JSON line per run with end-to-end and per-stage MB/s (from report.json: stage_seconds and cpu_seconds_by_step) and
the speed-up over one thread; the summary is recorded by hand in benchmarks/results/.
Stages: scan (read + language + filters + SHA-256 + MinHash) over bytes_in; near_dedup (LSH buckets + exact Jaccard
verification) over the staged bytes; tokenize (PII redaction + tokenization + shard writing) over bytes_out.
"""
import json
import os
import shutil
import subprocess
import sys
import time


def run(granite_data, tokenizer, inputs, out, threads):
    if os.path.exists(out):
        shutil.rmtree(out)
    cmd = [granite_data, "prepare", "--output", out, "--tokenizer", tokenizer, "--threads", str(threads), "--quiet"]
    for i in inputs:
        cmd += ["--input", i]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    return wall, report


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    granite_data, tokenizer, workdir, threads_arg = sys.argv[1:5]
    inputs = sys.argv[5:]
    thread_counts = [int(t) for t in threads_arg.split(",")]
    os.makedirs(workdir, exist_ok=True)
    run(granite_data, tokenizer, inputs, os.path.join(workdir, "warmup"), max(thread_counts))
    base = None
    for threads in thread_counts:
        wall, r = run(granite_data, tokenizer, inputs, os.path.join(workdir, f"t{threads}"), threads)
        mb_in = r["bytes_scanned"] / 1e6  # bytes read and processed (files over max_bytes are not read)
        stages = r["stage_seconds"]
        staged_mb = r["bytes_out"] / 1e6  # kept text; near-dedup works on the staged (slightly larger) set
        line = {
            "threads": threads,
            "wall_s": wall,
            "documents_in": r["documents_in"],
            "documents_out": r["documents_out"],
            "MB_in": r["bytes_in"] / 1e6,  # every input file's size (unread: too large, or no language claims it)
            "MB_scanned": mb_in,
            "internal_s": r["seconds"],
            "tokens_out": r["tokens_out"],
            "exact_duplicates": r["exact_duplicates"],
            "near_duplicates": r["near_duplicates"],
            "MB_per_s_end_to_end": mb_in / wall,
            "MB_per_s_internal": mb_in / r["seconds"],
            "MB_per_s_scan": mb_in / stages["scan"],
            "MB_per_s_near_dedup": staged_mb / max(stages["near_dedup"], 1e-9),
            "MB_per_s_tokenize": r["bytes_out"] / 1e6 / stages["tokenize"],
            "stage_seconds": stages,
            "cpu_seconds_by_step": r["cpu_seconds_by_step"],
            "pipeline_busy": r.get("pipeline_busy"),
        }
        if base is None:
            base = (wall, r["seconds"])
        line["speedup_vs_first"] = base[0] / wall
        line["speedup_vs_first_internal"] = base[1] / r["seconds"]
        print(json.dumps(line), flush=True)
        shutil.rmtree(os.path.join(workdir, f"t{threads}"))


if __name__ == "__main__":
    main()
