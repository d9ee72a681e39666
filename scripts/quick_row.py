"""One result line of scripts/{text,image}_unseen_quick.sh: `eval --json` on stdin; the
`generate --json` file, task, seed and generate seconds as arguments."""
import json
import sys

r = json.load(sys.stdin)
h = json.load(open(sys.argv[1]))["head"]
task, seed, secs = sys.argv[2], sys.argv[3], float(sys.argv[4])
acc, maj = r["metrics"]["accuracy"], r["majority_rate"]
adapter = str(h.get("adapter", "-"))[:9]
print(f"{task}\tseed{seed}\tgenerate {acc:.4f}\tmajority {maj:.4f}\tgenerate {secs:.1f}s"
      f"\tadapter {adapter}\tshrinkage {h.get('shrinkage')}\tprior boost {h.get('prior_boost')}")
