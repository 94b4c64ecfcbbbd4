# Copied unchanged (apart from this header) from the team reference ../shared/reference/hf_baseline_train_decode.py,
# so benchmark runs need nothing outside the repository.
# Baseline used for the performance targets: HF transformers (PyTorch eager / compile) on a Granite-3B-shaped model, random weights, one H100.
import time, json, sys, os, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.backends.cuda.matmul.allow_tf32 = True
res = {"torch": torch.__version__, "gpu": torch.cuda.get_device_name()}
import transformers; res["transformers"] = transformers.__version__
cfg = LlamaConfig(vocab_size=49152, hidden_size=2560, intermediate_size=10240, num_hidden_layers=32,
    num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048, rope_theta=10000.0,
    rms_norm_eps=1e-5, attention_bias=True, mlp_bias=True, tie_word_embeddings=True, hidden_act="silu",
    bos_token_id=0, eos_token_id=0, pad_token_id=0, attn_implementation="sdpa")
with torch.device("cuda"):
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
N = sum(p.numel() for p in model.parameters()); res["params"] = N
L, d, S = 32, 2560, 2048
flop_per_tok = 6 * N + 12 * L * d * S
PEAK = 989.4e12
def train_bench(m, mb, steps=6, warm=3, ckpt=False):
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
    if ckpt: model.gradient_checkpointing_enable()
    else: model.gradient_checkpointing_disable()
    m.train()
    x = torch.randint(0, 49152, (mb, S), device="cuda")
    for i in range(warm + steps):
        if i == warm: torch.cuda.synchronize(); t = time.perf_counter()
        out = m(input_ids=x, labels=x)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize(); dt = (time.perf_counter() - t) / steps
    tps = mb * S / dt
    r = {"mb": mb, "ckpt": ckpt, "step_s": round(dt, 4), "tok_s": round(tps), "mfu": round(tps * flop_per_tok / PEAK, 4),
         "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1)}
    del opt; torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    return r
res["train_eager"] = []
for mb, ck in [(4, False), (8, True)]:
    try: res["train_eager"].append(train_bench(model, mb, ckpt=ck))
    except torch.OutOfMemoryError as e: res["train_eager"].append({"mb": mb, "ckpt": ck, "oom": True}); torch.cuda.empty_cache()
    print(json.dumps(res), flush=True)
# decode, batch 1
model.eval(); model.gradient_checkpointing_disable()
prompt = torch.randint(5, 49152, (1, 128), device="cuda")
with torch.no_grad():
    for bs in [1, 8]:
        p = prompt.repeat(bs, 1)
        model.generate(p, max_new_tokens=16, do_sample=False, min_new_tokens=16)
        torch.cuda.synchronize(); t = time.perf_counter()
        model.generate(p, max_new_tokens=256, min_new_tokens=256, do_sample=False)
        torch.cuda.synchronize(); dt = time.perf_counter() - t
        res[f"decode_bs{bs}_tok_s"] = round(bs * 256 / dt, 1)
        print(json.dumps(res), flush=True)
# prefill (forward only) throughput
with torch.no_grad():
    x = torch.randint(0, 49152, (8, S), device="cuda")
    for _ in range(2): model(input_ids=x)
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(5): model(input_ids=x)
    torch.cuda.synchronize(); dt = (time.perf_counter() - t) / 5
    res["prefill_tok_s"] = round(8 * S / dt); res["prefill_mfu"] = round(8 * S * (2 * N + 4 * L * d * S) / dt / PEAK, 4)
print(json.dumps(res), flush=True)
if os.environ.get("COMPILE"):
    model.train()
    cm = torch.compile(model)
    try: res["train_compile"] = train_bench(cm, 4, steps=6, warm=4)
    except Exception as e: res["train_compile"] = {"error": str(e)[:300]}
    print(json.dumps(res), flush=True)
json.dump(res, open(os.environ.get("OUT", ".") + "/hf_baseline.json", "w"), indent=1)
