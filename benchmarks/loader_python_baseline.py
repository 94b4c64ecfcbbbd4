#!/usr/bin/env python3
"""The Python equivalent of bench_loader, for the same-run baseline: Megatron-LM's GPTFIMDataset work (packed
seq_len + 1 samples from Megatron .bin/.idx shards, FIM per EOD-separated segment with HF tokenizers' decode/encode,
as megatron/training/datasets/fim_dataset.py does) plus the collation a trainer needs (inputs, labels, position ids
restarting after EOD, torch tensors). One process, numpy + tokenizers + torch.

    loader_python_baseline.py TOKENIZER.json DATA_DIR [SEQ_LEN=2048] [MICRO_BATCH=8] [TOKENS=2000000]

Prints one JSON line per FIM rate (0 and 0.5), like bench_loader.
"""
import glob
import json
import os
import struct
import sys
import time

import numpy as np
import torch
from tokenizers import Tokenizer

DTYPES = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}


def read_shard(prefix):
    with open(prefix + ".idx", "rb") as f:
        assert f.read(9) == b"MMIDIDX\x00\x00"
        (version,) = struct.unpack("<Q", f.read(8))
        (code,) = struct.unpack("<B", f.read(1))
        (count,) = struct.unpack("<Q", f.read(8))
        struct.unpack("<Q", f.read(8))
        offset = f.tell()
    lengths = np.memmap(prefix + ".idx", dtype=np.int32, mode="r", offset=offset, shape=(count,))
    pointers = np.memmap(prefix + ".idx", dtype=np.int64, mode="r", offset=offset + 4 * count, shape=(count,))
    data = np.memmap(prefix + ".bin", dtype=DTYPES[code], mode="r")
    return data, lengths, pointers


def main():
    tok = Tokenizer.from_file(sys.argv[1])
    data_dir = sys.argv[2]
    seq_len = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
    micro_batch = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    budget = int(sys.argv[5]) if len(sys.argv) > 5 else 2_000_000
    stream = np.concatenate(
        [read_shard(p[:-4])[0].astype(np.int64) for p in sorted(glob.glob(os.path.join(data_dir, "shard-*.idx")))]
    )
    eod = tok.token_to_id("<|endoftext|>")
    pre, mid, suf, pad = (tok.token_to_id(t) for t in ("<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>"))

    for fim_rate in (0.0, 0.5):
        rng = np.random.RandomState(42)

        def permute(sample):  # Megatron's _permute, truncate_or_pad=False
            if not rng.binomial(1, fim_rate):
                return sample
            contents = tok.decode(sample.tolist(), skip_special_tokens=False)
            b = sorted(rng.randint(low=0, high=len(contents) + 1, size=2))
            prefix = np.array(tok.encode(contents[: b[0]], add_special_tokens=False).ids, dtype=np.int64)
            middle = np.array(tok.encode(contents[b[0] : b[1]], add_special_tokens=False).ids, dtype=np.int64)
            suffix = np.array(tok.encode(contents[b[1] :], add_special_tokens=False).ids, dtype=np.int64)
            if rng.binomial(1, 0.5):
                return np.concatenate([[pre, suf], suffix, [mid], prefix, middle])
            return np.concatenate([[pre], prefix, [suf], suffix, [mid], middle])

        start = time.perf_counter()
        cpu0 = time.process_time()
        tokens = 0
        k = 0
        while tokens < budget:
            rows = []
            for _ in range(micro_batch):
                sample = stream[(k * seq_len) % (len(stream) - seq_len - 1):][: seq_len + 1]
                k += 1
                if fim_rate > 0:  # Megatron's split at EOD, permute each segment, restore the length
                    breaks = np.flatnonzero(sample == eod)
                    parts, begin = [], 0
                    for loc in breaks:
                        if loc > begin:
                            parts += [permute(sample[begin:loc]), [eod]]
                        begin = loc + 1
                    parts.append(permute(sample[begin:]))
                    sample = np.concatenate(parts)[: seq_len + 1]
                    if len(sample) < seq_len + 1:
                        sample = np.concatenate([sample, np.full(seq_len + 1 - len(sample), pad)])
                rows.append(sample)
            batch = np.stack(rows)
            inputs, labels = batch[:, :-1], batch[:, 1:]
            positions = np.zeros_like(inputs)
            for r in range(inputs.shape[0]):  # Megatron's reset_position_ids
                pos = 0
                for t in range(seq_len):
                    positions[r, t] = pos
                    pos = 0 if inputs[r, t] == eod else pos + 1
            torch.from_numpy(inputs.copy()), torch.from_numpy(labels.copy()), torch.from_numpy(positions)
            tokens += inputs.size
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        print(json.dumps({"baseline": "python megatron-style", "fim_rate": fim_rate, "seq_len": seq_len,
                          "micro_batch": micro_batch, "tokens": tokens, "wall_s": wall, "cpu_s": cpu,
                          "tokens_per_s": tokens / wall, "tokens_per_cpu_s": tokens / cpu}), flush=True)


if __name__ == "__main__":
    main()
