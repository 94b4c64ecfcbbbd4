#!/usr/bin/env python3
"""granite-pretrain on the Granite-3B-Code config (random init, real code) on one GPU: throughput, MFU, peak memory
and loss over a few hundred steps, for the precision/memory settings the HF baseline (hf_baseline_train_decode.py,
same call) is compared with.

  python3 benchmarks/bench_train.py BUILD_DIR DATA_DIR OUT_DIR [STEPS]      (BENCH_TRAIN_RUNS=a,b: only those)

DATA_DIR holds granite-data prepare output (real code). One JSON line per run on stdout; each run's metrics.jsonl
and log stay in OUT_DIR/<run>/. MFU as granite-pretrain logs it: (6N + 12 L d s) FLOPs per token over 989e12.
"""
import json
import os
import statistics
import subprocess
import sys
import time

build, data, out = sys.argv[1:4]
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 300
config = "configs/train/granite-3b-code-phase1.json"

# Shared by every run: the paper's optimizer and phase-1 schedule shape, shortened to `steps`; no evaluation data
# and no checkpoint (a 3B checkpoint with its fp32 optimizer state is ~50 GB).
common = [
    "--data", data, "--save-every", "0",
    "--set", "eval_data=null", "--set", "train.eval_every=0", "--set", "checkpoint.at_end=false",
    "--set", "train.log_every=5", "--set", "train.grad_accum=1",
    "--set", "schedule.warmup_steps=50", "--set", f"schedule.decay_steps={max(1, steps - 50)}",
]

# name, steps (None: the STEPS argument), settings. `causal`: document_mask false -- each packed row one causal
# sequence, as the HF baseline trains (flash attention); without it, attention and positions stay per document.
mb4, mb8 = ["--set", "data.micro_batch=4"], ["--set", "data.micro_batch=8"]
ac, no_ac = ["--set", "train.activation_checkpointing=true"], ["--set", "train.activation_checkpointing=false"]
pure = ["--set", "train.master_dtype=bfloat16"]  # the HF baseline's policy: bf16 weights and bf16 AdamW state
causal = ["--set", "train.document_mask=false"]
runs = [
    # The default policy (bf16 compute, fp32 master weights and AdamW state: 18 bytes per parameter) needs activation
    # checkpointing at these micro-batches on 80 GB.
    ("mixed-bf16-ac-mb4", None, mb4 + ac),
    ("mixed-bf16-ac-mb8", 30, mb8 + ac),
    ("mixed-bf16-ac-mb8-causal", 30, mb8 + ac + causal),
    ("pure-bf16-noac-mb4", 30, mb4 + no_ac + pure),
    ("pure-bf16-noac-mb4-causal", 30, mb4 + no_ac + pure + causal),  # = HF (mb 4, no checkpointing)
    ("pure-bf16-ac-mb8-causal", 30, mb8 + ac + pure + causal),       # = HF (mb 8, checkpointing)
    # The data-parallel path with one rank (granite-launch: NCCL process group, bucketed gradient all-reduce during
    # backward) against the same work without a process group: the overhead of the distributed code.
    ("pure-bf16-noac-mb4-causal-nccl1", 30, mb4 + no_ac + pure + causal),
    ("mixed-bf16-ac-mb8-causal-nccl1", 30, mb8 + ac + causal),
]
launched = {"pure-bf16-noac-mb4-causal-nccl1": 1, "mixed-bf16-ac-mb8-causal-nccl1": 1}  # run name -> ranks

only = os.environ.get("BENCH_TRAIN_RUNS")
for name, n, settings in runs:
    if only and name not in only.split(","):
        continue
    n = steps if n is None else n
    run_dir = os.path.join(out, name)
    cmd = [os.path.join(build, "apps", "granite-pretrain"), "--config", config, "--output-dir", run_dir,
           "--max-steps", str(n), "--resume", "never"] + common + settings
    if name in launched:
        cmd = [os.path.join(build, "apps", "granite-launch"), "--nproc-per-node", str(launched[name]), "--"] + cmd
    os.makedirs(out, exist_ok=True)
    start = time.time()
    with open(os.path.join(out, name + ".log"), "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    result = {"run": name, "steps": n, "rc": rc, "wall_s": round(time.time() - start, 1), "command": " ".join(cmd)}
    metrics = os.path.join(run_dir, "metrics.jsonl")
    rows = [json.loads(l) for l in open(metrics)] if os.path.exists(metrics) else []
    rows = [r for r in rows if "loss" in r]
    if rows:
        steady = rows[2:] if len(rows) > 3 else rows  # the first 10 steps include start-up and allocator warm-up
        result.update({
            "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in steady)),
            "mfu": round(statistics.median(r["mfu"] for r in steady), 4),
            "peak_memory_gib": round(max(r.get("peak_memory_gib", 0) for r in rows), 1),
            "loss_first": round(rows[0]["loss"], 3),
            "loss_last": round(rows[-1]["loss"], 3),
            "loss_max_after_first": round(max(r["loss"] for r in rows[1:]), 3) if len(rows) > 1 else None,
            "loss_clm_last": round(rows[-1]["loss_clm"], 3),
            "loss_fim_last": round(rows[-1]["loss_fim"], 3),
            "grad_norm_last": round(rows[-1]["grad_norm"], 3),
            "skipped_steps": int(rows[-1]["skipped_steps"]),
            "losses_every_5": [round(r["loss"], 3) for r in rows],
        })
    print(json.dumps(result), flush=True)
