#!/usr/bin/env python3
"""HF tokenizers baseline for benchmarks/bench_tokenizer.cpp, on the same corpus in the same run.

    python3 benchmarks/tokenizer_hf_baseline.py TOKENIZER.json CORPUS.jsonl IDS_OUT.jsonl

Single thread: Tokenizer.encode(text, add_special_tokens=False) per document (one core; the Rust core does not
parallelise a single encode). All threads: encode_batch over the corpus (Rayon, every core). Prints JSON lines with
MB/s and tokens/s, and writes each document's ids for the parity check.
"""
import json
import os
import sys
import time

from tokenizers import Tokenizer


def main():
    tok_path, corpus_path, ids_out = sys.argv[1:4]
    tok = Tokenizer.from_file(tok_path)
    texts = [json.loads(l)["text"] for l in open(corpus_path, encoding="utf-8")]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    t0 = time.perf_counter()
    ids = [tok.encode(t, add_special_tokens=False).ids for t in texts]
    single = time.perf_counter() - t0
    tokens = sum(len(i) for i in ids)
    print(json.dumps({"hf": "encode", "threads": 1, "seconds": single, "MB_per_s": mb / single,
                      "tokens_per_s": tokens / single, "tokens": tokens}), flush=True)
    t0 = time.perf_counter()
    batch = tok.encode_batch(texts, add_special_tokens=False)
    multi = time.perf_counter() - t0
    print(json.dumps({"hf": "encode_batch", "threads": os.cpu_count(), "seconds": multi, "MB_per_s": mb / multi,
                      "tokens_per_s": tokens / multi}), flush=True)
    assert [b.ids for b in batch] == ids
    with open(ids_out, "w") as f:
        for i in ids:
            f.write(json.dumps({"ids": i}) + "\n")


if __name__ == "__main__":
    main()
