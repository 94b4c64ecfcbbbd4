#!/usr/bin/env python3
"""Multi-GPU training on one host (issue: multi-GPU runs), ours and PyTorch's on the same work in the same call:

  * weak scaling of data-parallel training of the Granite-3B-Code config, 1 -> N GPUs, the same micro-batch per GPU
    (pure bf16, no activation checkpointing, causal rows: the single-GPU HF comparison's settings); ours also fully
    sharded on N GPUs; PyTorch DDP on 1 and N GPUs;
  * fully sharded training of the Granite-8B-Code config on N GPUs (pure bf16, activation checkpointing), ours vs
    PyTorch FSDP2;
  * a kill-and-resume: the tiny config, fully sharded on N GPUs, stopped with SIGTERM mid-run (the job saves a
    sharded checkpoint and stops), resumed on 1 GPU without sharding, against an uninterrupted N-GPU run.

  python3 benchmarks/bench_multi_gpu.py BUILD_DIR DATA_DIR OUT_DIR [GPUS]     (BENCH_RUNS=a,b: only those runs)

One JSON line per run on stdout; per-run logs and metrics in OUT_DIR/<run>/.
"""
import json
import os
import statistics
import subprocess
import sys
import time

build, data, out = sys.argv[1:4]
gpus = int(sys.argv[4]) if len(sys.argv) > 4 else 2
only = os.environ.get("BENCH_RUNS")
launch = os.path.join(build, "apps", "granite-launch")
pretrain = os.path.join(build, "apps", "granite-pretrain")
os.makedirs(out, exist_ok=True)

common = ["--data", data, "--save-every", "0", "--resume", "never",
          "--set", "eval_data=null", "--set", "train.eval_every=0", "--set", "checkpoint.at_end=false",
          "--set", "train.log_every=5", "--set", "train.grad_accum=1", "--set", "train.master_dtype=bfloat16",
          "--set", "train.document_mask=false", "--set", "schedule.warmup_steps=10"]
b3 = ["--config", "configs/train/granite-3b-code-phase1.json", "--set", "data.micro_batch=4",
      "--set", "train.activation_checkpointing=false"]
b8 = ["--config", "configs/train/granite-8b-code-phase1.json", "--set", "data.micro_batch=2",
      "--set", "train.activation_checkpointing=true"]
full = ["--set", "train.sharding=full"]
# name, GPUs, steps, settings
ours = [
    ("granite-3b-ddp-1gpu", 1, 25, b3),
    (f"granite-3b-ddp-{gpus}gpu", gpus, 25, b3),
    (f"granite-3b-full-{gpus}gpu", gpus, 25, b3 + full),
    (f"granite-8b-full-{gpus}gpu", gpus, 20, b8 + full),
]
baselines = [  # name, GPUs, mode, model, micro-batch, seq, steps, AC
    ("pytorch-3b-ddp-1gpu", 1, "ddp", "configs/models/granite-3b-code-base-2k.json", 4, 2048, 10, 0),
    (f"pytorch-3b-ddp-{gpus}gpu", gpus, "ddp", "configs/models/granite-3b-code-base-2k.json", 4, 2048, 10, 0),
    (f"pytorch-3b-fsdp2-{gpus}gpu", gpus, "fsdp2", "configs/models/granite-3b-code-base-2k.json", 4, 2048, 10, 0),
    (f"pytorch-8b-fsdp2-{gpus}gpu", gpus, "fsdp2", "configs/models/granite-8b-code-base-4k.json", 2, 4096, 8, 1),
]


def wanted(name):
    return not only or name in only.split(",")


def run(cmd, log_path, timeout=None):
    start = time.time()
    with open(log_path, "w") as log:
        try:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            rc = "timeout"
    return rc, round(time.time() - start, 1)


def metrics(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    return [json.loads(l) for l in open(path)] if os.path.exists(path) else []


for name, n, steps, settings in ours:
    if not wanted(name):
        continue
    run_dir = os.path.join(out, name)
    cmd = [launch, "--nproc-per-node", str(n), "--", pretrain, "--output-dir", run_dir, "--max-steps", str(steps)] + \
        common + settings
    rc, wall = run(cmd, run_dir + ".log")
    result = {"run": name, "gpus": n, "rc": rc, "wall_s": wall, "command": " ".join(cmd)}
    rows = [r for r in metrics(run_dir) if "loss" in r]
    if rows:
        steady = rows[1:] if len(rows) > 2 else rows  # the first window holds start-up and allocator warm-up
        result.update({
            "tokens_per_s_per_gpu": round(statistics.median(r["tokens_per_s"] for r in steady) / n),
            "mfu": round(statistics.median(r["mfu"] for r in steady), 4),
            "peak_memory_gib": round(max(r.get("peak_memory_gib", 0) for r in rows), 1),
            "loss_first": round(rows[0]["loss"], 3), "loss_last": round(rows[-1]["loss"], 3)})
    print(json.dumps(result), flush=True)

torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
for name, n, mode, model, mb, seq, steps, ac in baselines:
    if not wanted(name):
        continue
    cmd = torchrun + ["--nproc-per-node", str(n), "benchmarks/pytorch_dist_baseline.py", mode, model, str(mb),
                      str(seq), str(steps), str(ac)]
    rc, wall = run(cmd, os.path.join(out, name + ".log"))
    result = {"run": name, "gpus": n, "rc": rc, "wall_s": wall, "command": " ".join(cmd)}
    for line in open(os.path.join(out, name + ".log")):
        if line.startswith("{"):
            result.update(json.loads(line))
    print(json.dumps(result), flush=True)

# Kill and resume on another GPU count: the tiny config (fp32), so losses compare closely.
if wanted("kill-resume"):
    tiny = ["--config", "configs/train/tiny-pretrain.json", "--data", data, "--resume", "auto",
            "--set", "train.device=cuda", "--set", "train.steps=3000", "--set", "train.log_every=1",
            "--set", "checkpoint.save_every=0", "--set", "data.micro_batch=8"]
    sharded = ["--set", "train.sharding=full"]
    ref_dir, cut_dir = os.path.join(out, "kill-reference"), os.path.join(out, "kill-resumed")
    rc_ref, wall_ref = run([launch, "--nproc-per-node", str(gpus), "--", pretrain, "--output-dir", ref_dir] + tiny +
                           sharded, ref_dir + ".log")
    # Stopped by SIGTERM after a third of the reference's time: every rank saves its shards at the same step.
    rc_cut, _ = run(["timeout", "-s", "TERM", str(max(5, int(wall_ref / 3))), launch, "--nproc-per-node", str(gpus),
                     "--", pretrain, "--output-dir", cut_dir] + tiny + sharded, cut_dir + ".log")
    stopped_at = max((r["step"] for r in metrics(cut_dir)), default=0)
    rc_resume, _ = run([pretrain, "--output-dir", cut_dir] + tiny +
                       ["--set", f"data.micro_batch={8 * gpus}"], cut_dir + "-resume.log")
    ref = {r["step"]: r["loss"] for r in metrics(ref_dir) if "loss" in r}
    got = {r["step"]: r["loss"] for r in metrics(cut_dir) if "loss" in r}
    after = [s for s in got if s > stopped_at and s in ref]
    print(json.dumps({"run": "kill-resume", "gpus_before": gpus, "gpus_after": 1, "rc": [rc_ref, rc_cut, rc_resume],
                      "stopped_at_step": stopped_at, "steps": max(got, default=0),
                      "steps_compared_after_resume": len(after),
                      "max_abs_loss_diff_after_resume": max((abs(got[s] - ref[s]) for s in after), default=None),
                      "loss_last": [ref.get(3000), got.get(3000)]}), flush=True)
