# HF transformers baseline for bench_decode: the decode and prefill parts of benchmarks/hf_baseline_train_decode.py
# (the reference measurement: Granite-3B-Code shape, random weights, bf16, SDPA, one GPU), without its training part.
#   python3 benchmarks/hf_decode_baseline.py [PROMPT_TOKENS=128] [NEW_TOKENS=256] [BATCHES=1,8]
import json
import sys
import time

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

prompt_tokens = int(sys.argv[1]) if len(sys.argv) > 1 else 128
new_tokens = int(sys.argv[2]) if len(sys.argv) > 2 else 256
batches = [int(b) for b in (sys.argv[3] if len(sys.argv) > 3 else "1,8").split(",")]
torch.backends.cuda.matmul.allow_tf32 = True
cfg = LlamaConfig(vocab_size=49152, hidden_size=2560, intermediate_size=10240, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048, rope_theta=10000.0,
                  rms_norm_eps=1e-5, attention_bias=True, mlp_bias=True, tie_word_embeddings=True, hidden_act="silu",
                  bos_token_id=0, eos_token_id=0, pad_token_id=0, attn_implementation="sdpa")
with torch.device("cuda"):
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
model.eval()
N = sum(p.numel() for p in model.parameters())
common = {"impl": "hf", "torch": torch.__version__, "transformers": transformers.__version__,
          "gpu": torch.cuda.get_device_name(), "params": N}
prompt = torch.randint(5, 49152, (1, prompt_tokens), device="cuda")
with torch.no_grad():
    for bs in batches:
        p = prompt.repeat(bs, 1)
        model.generate(p, max_new_tokens=16, do_sample=False, min_new_tokens=16)
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.generate(p, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t
        print(json.dumps({**common, "bench": "decode", "mode": "generate", "batch": bs, "prompt_tokens": prompt_tokens,
                          "new_tokens": new_tokens, "seconds": dt, "tok_s": bs * new_tokens / dt}), flush=True)
    L, d, S = 32, 2560, 2048
    x = torch.randint(0, 49152, (8, S), device="cuda")
    for _ in range(2):
        model(input_ids=x)
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(5):
        model(input_ids=x)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / 5
    print(json.dumps({**common, "bench": "prefill", "batch": 8, "seq": S, "seconds": dt, "tok_s": 8 * S / dt,
                      "mfu": 8 * S * (2 * N + 4 * L * d * S) / dt / 989.4e12}), flush=True)
