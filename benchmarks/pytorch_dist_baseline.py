#!/usr/bin/env python3
"""The PyTorch baseline for the multi-GPU runs (benchmarks/bench_multi_gpu.py runs it in the same call as ours):
HF transformers' LlamaForCausalLM of a Granite config under PyTorch DDP or FSDP2 (fully_shard per decoder layer, then
the root, as torchtitan wraps), pure bf16 (bf16 weights, gradients and fused AdamW state: the policy
hf_baseline_train_decode.py measures on one GPU), SDPA attention, random tokens, grad-norm clipping at 1.0.

  torchrun --nproc-per-node N benchmarks/pytorch_dist_baseline.py ddp|fsdp2 MODEL_JSON MICRO_BATCH SEQ_LEN STEPS AC

MODEL_JSON: one of configs/models/*.json (llama architecture). AC: 1 = activation checkpointing (HF's, non-reentrant).
Rank 0 prints one JSON line: tokens/s per GPU over the steps after 3 warm-up steps, MFU per GPU with
(6N + 12 L d s) FLOPs per token over 989e12, peak memory per GPU.
"""
import json
import os
import sys
import time

import torch
import torch.distributed as dist
from transformers import LlamaConfig, LlamaForCausalLM

mode, model_json, mb, seq, steps, ac = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
    int(sys.argv[5]), sys.argv[6] == "1"
warm = 3
dist.init_process_group("nccl")
rank, world, local = dist.get_rank(), dist.get_world_size(), int(os.environ["LOCAL_RANK"])
torch.cuda.set_device(local)
torch.backends.cuda.matmul.allow_tf32 = True
g = json.load(open(model_json))
assert g["architecture"] == "llama", "the baseline builds llama-architecture configs only"
cfg = LlamaConfig(vocab_size=g["vocab_size"], hidden_size=g["hidden_size"], intermediate_size=g["intermediate_size"],
                  num_hidden_layers=g["num_hidden_layers"], num_attention_heads=g["num_attention_heads"],
                  num_key_value_heads=g["num_key_value_heads"], max_position_embeddings=g["max_position_embeddings"],
                  rope_theta=g["rope_theta"], rms_norm_eps=g["norm_eps"], attention_bias=g["attention_bias"],
                  mlp_bias=g["attention_bias"], tie_word_embeddings=g["tie_word_embeddings"], hidden_act="silu",
                  attention_dropout=g.get("attention_dropout", 0.0), bos_token_id=0, eos_token_id=0, pad_token_id=0,
                  attn_implementation="sdpa")
if mode == "ddp":
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local], bucket_cap_mb=25)
    inner = model.module
elif mode == "fsdp2":
    from torch.distributed.fsdp import fully_shard
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    for layer in model.model.layers:
        fully_shard(layer)
    fully_shard(model)
    model.to_empty(device="cuda")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.02)
    model.model.rotary_emb.__init__(config=cfg, device="cuda")  # its inv_freq buffer was on meta
    inner = model
else:
    raise SystemExit(f"unknown mode {mode} (ddp, fsdp2)")
if ac:
    inner.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
model.train()
opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
x = torch.randint(0, cfg.vocab_size, (mb, seq), device="cuda")
for i in range(warm + steps):
    if i == warm:
        torch.cuda.synchronize()
        dist.barrier()
        start = time.perf_counter()
    loss = model(input_ids=x, labels=x).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
torch.cuda.synchronize()
dt = (time.perf_counter() - start) / steps
tps = mb * seq / dt  # per GPU
flops = 6 * n_params + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq
peak = torch.tensor([torch.cuda.max_memory_allocated() / 2**30], device="cuda")
dist.all_reduce(peak, op=dist.ReduceOp.MAX)
if rank == 0:
    print(json.dumps({"baseline": f"pytorch-{mode}", "torch": torch.__version__, "gpus": world,
                      "model": os.path.basename(model_json), "params": n_params, "micro_batch": mb, "seq_len": seq,
                      "activation_checkpointing": ac, "step_s": round(dt, 4), "tokens_per_s_per_gpu": round(tps),
                      "mfu": round(tps * flops / 989e12, 4), "peak_memory_gib": round(peak.item(), 1),
                      "loss_last": round(loss.item(), 3)}), flush=True)
dist.destroy_process_group()
