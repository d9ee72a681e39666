"""Writes regression CSVs (target in the last column, named `target`) from the tables
issue 36 allows: any numeric column of the UCI sets predicted from the others, and wine
quality as a number. At most 3,000 rows each (a seeded sample). Files come from data/
(`cargo xtask fetch`) and $HYPER_SHARED_DATA (default ../shared/data).
Usage: python3 scripts/regression_csvs.py OUT_DIR"""
import csv, gzip, io, os, random, sys

root = os.path.join(os.path.dirname(__file__), "..")
shared = os.environ.get("HYPER_SHARED_DATA", os.path.join(root, "..", "shared", "data"))
out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def write(name, header, rows, target):
    random.Random(0).shuffle(rows)
    rows = rows[:3000]
    t = header.index(target)
    with open(os.path.join(out, f"{name}.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([h for j, h in enumerate(header) if j != t] + ["target"])
        for r in rows:
            w.writerow([v for j, v in enumerate(r) if j != t] + [r[t]])


def read(path, delimiter=","):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        rows = list(csv.reader(f, delimiter=delimiter))
    return rows[0], rows[1:]


h, r = read(os.path.join(root, "data", "wine_quality", "winequality-red.csv.gz"))
write("wine-red-quality", h, r, "quality")
h, r = read(os.path.join(shared, "uci", "wine_quality", "winequality-white.csv"), ";")
write("wine-white-alcohol", h, r, "alcohol")
h, r = read(os.path.join(shared, "uci", "bank_marketing", "bank.csv"), ";")
write("bank-age", h, r, "age")


def sklearn(name, cols):
    with open(os.path.join(root, "data", "sklearn", f"{name}.csv")) as f:
        rows = list(csv.reader(f))[1:]
    return cols + ["class"], rows


write("wine-alcohol", *sklearn("wine_data", [f"f{i}" for i in range(13)]), "f0")
write("breast-cancer-texture", *sklearn("breast_cancer", [f"f{i}" for i in range(30)]), "f1")
write("iris-petal-width", *sklearn("iris", ["sepal_length", "sepal_width", "petal_length", "petal_width"]), "petal_width")
