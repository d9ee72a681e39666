"""PyTorch reference for issue 10's encode bar: one requirement sentence through
all-MiniLM-L6-v2 (mean pooling + L2 norm, as sentence-transformers does), median of
`--rounds` calls after a warm-up, on the MiniLM files `cargo xtask fetch` wrote.

    ~/torch-env/bin/python benches/torch_encode.py data/minilm [--threads 2]
"""
import argparse
import statistics
import time

import torch
from transformers import AutoModel, AutoTokenizer

IRIS = (
    "This is a task of 3-class, 4-feature and small-scaled tabular classification over 4 "
    "numeric features (sepal length (cm) 4.3–7.9, sepal width (cm) 2–4.4, petal length (cm) "
    "1–6.9, petal width (cm) 0.1–2.5), with roughly balanced classes."
)

ap = argparse.ArgumentParser()
ap.add_argument("minilm_dir")
ap.add_argument("--threads", type=int, default=torch.get_num_threads())
ap.add_argument("--rounds", type=int, default=30)
args = ap.parse_args()
torch.set_num_threads(args.threads)
tok = AutoTokenizer.from_pretrained(args.minilm_dir)
model = AutoModel.from_pretrained(args.minilm_dir).eval()


def embed(text):
    enc = tok([text], return_tensors="pt")
    with torch.inference_mode():
        h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(e, dim=1), enc["input_ids"].shape[1]


embed(IRIS)
times = []
for _ in range(args.rounds):
    t = time.perf_counter()
    _, n = embed(IRIS)
    times.append((time.perf_counter() - t) * 1e3)
print(
    f"torch {torch.__version__}, {args.threads} threads, {n} tokens: "
    f"median {statistics.median(times):.1f} ms (min {min(times):.1f})"
)
