#!/usr/bin/env python3
"""Writes a JSONL corpus ({"text": file content}) of real source files for the tokenizer benchmark.

    python3 benchmarks/make_code_corpus.py OUT.jsonl MAX_MB DIR [DIR ...]

Files are taken in sorted path order (deterministic), UTF-8 only, at most 200 KB each, until MAX_MB is reached.
On the GPU machine we use the Python standard library and PyTorch's own Python/C++ sources: real code that both
sides (HF tokenizers and granite) read in the same run.
"""
import json
import os
import sys

EXT = {".py", ".h", ".hpp", ".cpp", ".c", ".cu", ".cuh", ".pyi", ".js", ".sh", ".md", ".rst", ".txt", ".json", ".yaml"}


def main():
    out, max_mb, dirs = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    total = 0
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        for d in dirs:
            for root, subdirs, files in os.walk(d):
                subdirs.sort()
                for name in sorted(files):
                    if os.path.splitext(name)[1] not in EXT:
                        continue
                    path = os.path.join(root, name)
                    try:
                        if os.path.getsize(path) > 200_000:
                            continue
                        text = open(path, encoding="utf-8").read()
                    except (UnicodeDecodeError, OSError):
                        continue
                    if not text:
                        continue
                    f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
                    total += len(text.encode("utf-8"))
                    n += 1
                    if total >= max_mb * 1e6:
                        print(f"{n} files, {total / 1e6:.1f} MB", file=sys.stderr)
                        return
    print(f"{n} files, {total / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
