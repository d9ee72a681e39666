"""Writes three single-text CSVs (`text,label`) from the GLUE training sets in
$HYPER_SHARED_DATA/glue into the folder given as argv[1]:
  sst2.csv     SST-2's first 3,000 training rows (labels 0/1)
  cola.csv     CoLA's first 3,000 training rows (labels 0/1, 70% one class)
  source4.csv  which corpus a sentence is from (cola/sst/rte/mrpc), 750 rows each: CoLA
               rows 3000-3749, SST-2 rows 5000-5749, RTE hypotheses, MRPC first sentences;
               a derived task no generator was meta-trained on.
Only GLUE data, so every other public text set stays clean for evaluation."""
import csv, os, random, sys

G = os.path.join(os.environ.get("HYPER_SHARED_DATA", "../shared/data"), "glue")
out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def tsv(path):
    with open(path) as f:
        r = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        h = next(r)
        return [dict(zip(h, x)) for x in r]


def write(name, rows):
    with open(os.path.join(out, name), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)


sst = tsv(os.path.join(G, "SST-2/train.tsv"))
with open(os.path.join(G, "CoLA/train.tsv")) as f:
    cola = [(p[3], p[1]) for p in (line.rstrip("\n").split("\t") for line in f)]
write("sst2.csv", [(x["sentence"], x["label"]) for x in sst[:3000]])
write("cola.csv", cola[:3000])
src = [(t, "cola") for t, _ in cola[3000:3750]]
src += [(x["sentence"], "sst") for x in sst[5000:5750]]
src += [(x["sentence2"], "rte") for x in tsv(os.path.join(G, "RTE/train.tsv"))[:750]]
src += [(x["#1 String"], "mrpc") for x in tsv(os.path.join(G, "MRPC/train.tsv"))[:750]]
random.Random(0).shuffle(src)
write("source4.csv", src)
