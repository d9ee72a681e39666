//! Image loaders on small files written by the tests: an Office-31 style folder with
//! 2 domains × 2 classes (PNG and JPEG), hand-made IDX and CSV files, bilinear resize
//! against hand-computed values, and every bad input.

use std::io::Write;
use std::path::{Path, PathBuf};

use datasets::images::{
    area_downsample, load_class_folders, load_csv_pixels, load_folder, load_idx, resize, ImageSet,
    DEFAULT_SIZE,
};
use datasets::DataError;
use image::{Rgb, RgbImage};

fn solid(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb(rgb))
}

/// `<root>/{amazon,webcam}/images/{bike,mug}/`: amazon has 2 red PNG bikes and 1 blue JPEG
/// mug; webcam 1 green PNG bike and 2 JPEG mugs. Sizes differ on purpose.
fn office_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let mk = |p: PathBuf| {
        std::fs::create_dir_all(&p).unwrap();
        p
    };
    let a_bike = mk(r.join("amazon/images/bike"));
    let a_mug = mk(r.join("amazon/images/mug"));
    let w_bike = mk(r.join("webcam/images/bike"));
    let w_mug = mk(r.join("webcam/images/mug"));
    solid(40, 30, [255, 0, 0])
        .save(a_bike.join("frame_0001.png"))
        .unwrap();
    solid(17, 50, [255, 0, 0])
        .save(a_bike.join("frame_0002.png"))
        .unwrap();
    solid(64, 64, [0, 0, 255])
        .save(a_mug.join("frame_0001.jpg"))
        .unwrap();
    solid(20, 20, [0, 255, 0])
        .save(w_bike.join("frame_0001.png"))
        .unwrap();
    solid(32, 32, [0, 0, 255])
        .save(w_mug.join("frame_0001.jpg"))
        .unwrap();
    // A gradient JPEG with an upper-case extension.
    let grad = RgbImage::from_fn(48, 48, |x, _| Rgb([(x * 5) as u8, 128, 0]));
    grad.save_with_format(w_mug.join("frame_0002.JPG"), image::ImageFormat::Jpeg)
        .unwrap();
    // Not an image: ignored.
    std::fs::write(w_mug.join("notes.txt"), "not an image").unwrap();
    dir
}

#[test]
fn folder_two_domains_two_classes() {
    let dir = office_fixture();
    let a = load_folder(dir.path(), "amazon", DEFAULT_SIZE).unwrap();
    assert_eq!((a.n, a.channels, a.height, a.width), (3, 3, 32, 32));
    assert_eq!(a.images.len(), 3 * 3 * 32 * 32);
    assert_eq!(a.class_names, vec!["bike", "mug"]);
    assert_eq!(a.labels, vec![0, 0, 1]);
    // Solid red PNG stays exactly red after resizing: R = 1, G = B = 0 everywhere.
    let plane = 32 * 32;
    assert!(a.image(0)[..plane].iter().all(|&v| v == 1.0));
    assert!(a.image(0)[plane..].iter().all(|&v| v == 0.0));
    assert!(a.image(1)[..plane].iter().all(|&v| v == 1.0));
    // Solid blue JPEG: close to (0, 0, 1) (lossy).
    let mug = a.image(2);
    assert!(mug[..2 * plane].iter().all(|&v| v < 0.05));
    assert!(mug[2 * plane..].iter().all(|&v| v > 0.95));

    let w = load_folder(dir.path(), "webcam", 8).unwrap();
    assert_eq!((w.n, w.height, w.width), (3, 8, 8));
    assert_eq!(w.class_names, vec!["bike", "mug"]);
    assert_eq!(w.labels, vec![0, 1, 1]);
    assert_eq!(w.class_counts(), vec![1, 2]);
    assert_eq!(w.pixel(0, 1, 4, 4), 1.0); // green
                                          // Gradient: red rises left to right, green is about 128/255.
    let (left, right) = (w.pixel(2, 0, 4, 0), w.pixel(2, 0, 4, 7));
    assert!(right > left + 0.5, "{left} {right}");
    assert!((w.pixel(2, 1, 4, 4) - 128.0 / 255.0).abs() < 0.05);
}

/// A user's folder of mixed sizes loads at its most common size: the odd image is resized
/// (a solid colour stays that colour), grey and RGBA become RGB.
#[test]
fn class_folder_of_mixed_sizes_loads_at_the_most_common_size() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    solid(12, 10, [255, 0, 0]).save(a.join("1.png")).unwrap();
    solid(12, 10, [0, 255, 0]).save(a.join("2.png")).unwrap();
    image::GrayImage::from_pixel(30, 7, image::Luma([255]))
        .save(b.join("1.png"))
        .unwrap();
    image::RgbaImage::from_pixel(12, 10, image::Rgba([0, 0, 255, 9]))
        .save(b.join("2.png"))
        .unwrap();
    let set = load_class_folders(dir.path(), None).unwrap();
    assert_eq!((set.n, set.channels, set.height, set.width), (4, 3, 10, 12));
    assert_eq!(set.images.len(), 4 * 3 * 10 * 12);
    assert_eq!(set.labels, vec![0, 0, 1, 1]);
    // The 30×7 white image, resized to 12×10: white in every channel.
    assert!(set.image(2).iter().all(|&v| (v - 1.0).abs() < 1e-6));
    // RGBA: alpha dropped, blue kept.
    assert_eq!(set.pixel(3, 2, 5, 5), 1.0);
    assert_eq!(set.pixel(3, 0, 5, 5), 0.0);
}

fn assert_invalid(err: DataError, path: &Path, needle: &str) {
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "`{text}` should name {}",
        path.display()
    );
    assert!(text.contains(needle), "`{text}` should mention `{needle}`");
}

#[test]
fn folder_bad_inputs() {
    let dir = office_fixture();
    let r = dir.path();

    // Unknown domain: lists the ones present.
    let e = load_folder(r, "dslr", 32).unwrap_err();
    assert!(matches!(e, DataError::Unavailable { .. }));
    assert_invalid(e, &r.join("dslr/images"), "domains found under");
    let e = load_folder(r, "dslr", 32).unwrap_err().to_string();
    assert!(e.contains("amazon, webcam"), "{e}");

    // Corrupt image: the error names the file.
    let bad = r.join("amazon/images/mug/frame_0002.jpg");
    std::fs::write(&bad, b"\xff\xd8\xff\xe0 definitely not a jpeg").unwrap();
    assert_invalid(
        load_folder(r, "amazon", 32).unwrap_err(),
        &bad,
        "cannot decode image",
    );
    std::fs::remove_file(&bad).unwrap();
    // Truncated PNG.
    let png = std::fs::read(r.join("amazon/images/bike/frame_0001.png")).unwrap();
    let cut = r.join("amazon/images/bike/frame_0003.png");
    std::fs::write(&cut, &png[..png.len() / 2]).unwrap();
    assert_invalid(
        load_folder(r, "amazon", 32).unwrap_err(),
        &cut,
        "cannot decode image",
    );
    std::fs::remove_file(&cut).unwrap();
    assert_eq!(load_folder(r, "amazon", 32).unwrap().n, 3);

    // Empty class folder.
    let empty = r.join("amazon/images/phone");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("readme.txt"), "x").unwrap();
    assert_invalid(
        load_folder(r, "amazon", 32).unwrap_err(),
        &empty,
        "no .jpg/.jpeg/.png images",
    );

    // No classes at all.
    let bare = r.join("bare/images");
    std::fs::create_dir_all(&bare).unwrap();
    assert_invalid(
        load_folder(r, "bare", 32).unwrap_err(),
        &bare,
        "no class folders",
    );

    // Size 0.
    assert!(load_folder(r, "webcam", 0).is_err());

    // Root without any domain (Office-31 not unpacked): says so.
    let e = load_folder(&r.join("office31"), "amazon", 32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("none"), "{e}");
    assert!(
        e.contains(&r.join("office31/amazon/images").display().to_string()),
        "{e}"
    );
}

/// IDX bytes: magic `00 00 08 ndims`, big-endian dims, data.
fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn idx_plain_and_gzip() {
    let dir = tempfile::tempdir().unwrap();
    // 3 images of 2×3: pixel values 0, 51, 102, 153, 204, 255, ...
    let px: Vec<u8> = (0..18u32).map(|i| ((i * 51) % 256) as u8).collect();
    let images = idx(&[3, 2, 3], &px);
    let labels = idx(&[3], &[2, 0, 2]);
    let ip = write(dir.path(), "img-idx3-ubyte", &images);
    let lp = write(dir.path(), "lab-idx1-ubyte", &labels);
    let s = load_idx(&ip, &lp).unwrap();
    assert_eq!((s.n, s.channels, s.height, s.width), (3, 1, 2, 3));
    assert_eq!(s.labels, vec![2, 0, 2]);
    assert_eq!(s.class_names, vec!["0", "1", "2"]);
    // Image 0 = bytes 0..6 = 0, 51, 102, 153, 204, 255 -> /255 = 0, .2, .4, .6, .8, 1.
    let want = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
    for (a, b) in s.image(0).iter().zip(want) {
        assert!((a - b).abs() < 1e-6);
    }
    let gi = write(dir.path(), "img.gz", &gz(&images));
    let gl = write(dir.path(), "lab.gz", &gz(&labels));
    assert_eq!(
        load_idx(&gi, &gl).unwrap(),
        ImageSet {
            source: gi.display().to_string(),
            ..s
        }
    );
}

#[test]
fn idx_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let px = vec![7u8; 2 * 4 * 4];
    let good_i = write(d, "i", &idx(&[2, 4, 4], &px));
    let good_l = write(d, "l", &idx(&[2], &[0, 1]));
    assert!(load_idx(&good_i, &good_l).is_ok());

    // Truncated image data (plain and gzip).
    let mut cut = idx(&[2, 4, 4], &px);
    cut.truncate(cut.len() - 5);
    let p = write(d, "cut", &cut);
    assert_invalid(
        load_idx(&p, &good_l).unwrap_err(),
        &p,
        "truncated IDX file: header promises 32 data bytes, found 27",
    );
    let g = gz(&idx(&[2, 4, 4], &px));
    let p = write(d, "cut.gz", &g[..g.len() - 10]);
    assert_invalid(
        load_idx(&p, &good_l).unwrap_err(),
        &p,
        "corrupt or truncated gzip",
    );
    // Header cut short.
    let p = write(d, "short", &[0, 0, 8, 3, 0, 0]);
    assert_invalid(
        load_idx(&p, &good_l).unwrap_err(),
        &p,
        "truncated IDX header",
    );
    // Bad magic: not IDX; wrong dims (labels file passed as images); unsupported type.
    let p = write(d, "magic", b"PK\x03\x04garbage garbage garbage");
    assert_invalid(load_idx(&p, &good_l).unwrap_err(), &p, "not an IDX file");
    assert_invalid(
        load_idx(&good_l, &good_l).unwrap_err(),
        &good_l,
        "1 dimensions, expected 3",
    );
    let mut f = idx(&[2, 4, 4], &px);
    f[2] = 0x0D;
    let p = write(d, "float", &f);
    assert_invalid(
        load_idx(&p, &good_l).unwrap_err(),
        &p,
        "unsupported IDX data type 0x0d",
    );
    // Trailing bytes.
    let mut long = idx(&[2, 4, 4], &px);
    long.push(0);
    let p = write(d, "long", &long);
    assert_invalid(load_idx(&p, &good_l).unwrap_err(), &p, "1 bytes after");
    // Label count mismatch.
    let p = write(d, "l3", &idx(&[3], &[0, 1, 1]));
    assert_invalid(load_idx(&good_i, &p).unwrap_err(), &p, "3 labels but");
    // Missing file.
    let e = load_idx(&d.join("nope"), &good_l).unwrap_err();
    assert!(matches!(e, DataError::Unavailable { .. }));
    assert!(e
        .to_string()
        .contains(&d.join("nope").display().to_string()));
}

#[test]
fn csv_pixels_and_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two 2×2 images, max 16, labels 1 and 0.
    let p = write(d, "ok.csv", b"0,4,8,16,1\n16,16,0,2,0\n");
    let s = load_csv_pixels(&p, 2, 2, 16.0).unwrap();
    assert_eq!((s.n, s.height, s.width), (2, 2, 2));
    assert_eq!(s.images, vec![0.0, 0.25, 0.5, 1.0, 1.0, 1.0, 0.0, 0.125]);
    assert_eq!(s.labels, vec![1, 0]);
    assert_eq!(s.class_names, vec!["0", "1"]);
    let g = write(d, "ok.csv.gz", &gz(b"0,4,8,16,1\n16,16,0,2,0\n"));
    assert_eq!(load_csv_pixels(&g, 2, 2, 16.0).unwrap().images, s.images);

    let line_err = |content: &[u8], line: usize, needle: &str| {
        let p = write(d, "bad.csv", content);
        let e = load_csv_pixels(&p, 2, 2, 16.0).unwrap_err();
        match &e {
            DataError::Parse { line: l, .. } => assert_eq!(*l, line, "{e}"),
            other => panic!("expected Parse, got {other:?}"),
        }
        assert_invalid(e, &p, needle);
    };
    line_err(
        b"0,4,8,16,1\n1,2,3,0\n",
        2,
        "expected 5 comma-separated values",
    );
    line_err(b"0,4,x,16,1\n", 1, "pixel 2: non-numeric value `x`");
    line_err(b"0,4,8,17,1\n", 1, "pixel 3: value 17 is outside 0..=16");
    line_err(
        b"0,4,8,16,1\n0,4,8,16,-1\n",
        2,
        "not a non-negative integer",
    );
    line_err(b"0,4,8,16,1.5\n", 1, "not a non-negative integer");
    line_err(b"0,4,8,16,one\n", 1, "non-numeric label");
    let p = write(d, "empty.csv", b"");
    assert_invalid(load_csv_pixels(&p, 2, 2, 16.0).unwrap_err(), &p, "no rows");
}

fn one_image(h: usize, w: usize, px: Vec<f32>) -> ImageSet {
    ImageSet {
        images: px,
        labels: vec![0],
        n: 1,
        channels: 1,
        height: h,
        width: w,
        class_names: vec!["0".into()],
        source: "test".into(),
    }
}

#[test]
fn bilinear_resize_matches_hand_values() {
    // [[0,1],[2,3]] to 4×4, half-pixel centres: source x = (o + 0.5)/2 - 0.5 =
    // -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the last pixel) -> x weights
    // 0, .25, .75, 1; same for y. Row 1 = row 0 + .25·(row 1 − row 0) = row 0 + 0.5.
    // This is torch.nn.functional.interpolate(..., mode="bilinear", align_corners=False).
    let s = one_image(2, 2, vec![0.0, 1.0, 2.0, 3.0]);
    let r = resize(&s, 4, 4);
    assert_eq!((r.height, r.width, r.n, r.channels), (4, 4, 1, 1));
    #[rustfmt::skip]
    let want = [
        0.0, 0.25, 0.75, 1.0,
        0.5, 0.75, 1.25, 1.5,
        1.5, 1.75, 2.25, 2.5,
        2.0, 2.25, 2.75, 3.0,
    ];
    assert_eq!(r.images, want);

    // Downsampling 4×4 -> 2×2, antialiased: the triangle widens to 2 pixels, centred at
    // source 1 and 3, so pixels 0,1,2 weigh .75,.75,.25 (then 1,2,3 likewise), over 1.75.
    // Along one axis row 0 [0,.25,.75,1] -> [(.75·.25 + .25·.75)/1.75, (.25·.25 + .75·.75 +
    // .75·1)/1.75] = [.2142857, .7857143]; rows mix the same way. torch.nn.functional.
    // interpolate(..., mode="bilinear", align_corners=False, antialias=True) gives these.
    let back = resize(&r, 2, 2);
    let axis = |a: f32, b: f32, c: f32, d: f32| {
        [
            (0.75 * a + 0.75 * b + 0.25 * c) / 1.75,
            (0.25 * b + 0.75 * c + 0.75 * d) / 1.75,
        ]
    };
    let rows: Vec<[f32; 2]> = r
        .images
        .chunks(4)
        .map(|v| axis(v[0], v[1], v[2], v[3]))
        .collect();
    let want: Vec<f32> = (0..2)
        .flat_map(|x| {
            let col = axis(rows[0][x], rows[1][x], rows[2][x], rows[3][x]);
            [col[0], col[1]]
        })
        .collect();
    // `want` is column-major; the image is row-major.
    let want = vec![want[0], want[2], want[1], want[3]];
    for (g, w) in back.images.iter().zip(&want) {
        assert!((g - w).abs() < 1e-6, "{:?} vs {want:?}", back.images);
    }

    // Non-square, constant image stays constant, identity is a copy.
    let c = one_image(3, 5, vec![0.4; 15]);
    let r = resize(&c, 7, 2);
    assert_eq!((r.height, r.width), (7, 2));
    assert!(r.images.iter().all(|&v| (v - 0.4).abs() < 1e-6));
    assert_eq!(resize(&c, 3, 5), c);
}

#[test]
fn area_downsample_averages_overlapping_windows() {
    // 5 -> 2 along each axis: windows 0..3 and 2..5 (torch adaptive_avg_pool2d), so the
    // middle row/column counts in both.
    let s = one_image(5, 5, (0..25).map(|v| v as f32).collect());
    let r = area_downsample(&s, 2, 2);
    assert_eq!((r.height, r.width, r.n), (2, 2, 1));
    // Top-left: rows 0..3 × cols 0..3 = {0,1,2,5,6,7,10,11,12}, mean 6.
    // Top-right: rows 0..3 × cols 2..5 = {2,3,4,7,8,9,12,13,14}, mean 8; bottom rows +10.
    assert_eq!(r.images, vec![6.0, 8.0, 16.0, 18.0]);
    // 28 -> 8 (MNIST to Digits' size): a constant stays constant, labels ride along.
    let c = one_image(28, 28, vec![0.25; 784]);
    let r = area_downsample(&c, 8, 8);
    assert_eq!(
        (r.height, r.width, r.labels.clone()),
        (8, 8, c.labels.clone())
    );
    assert!(r.images.iter().all(|&v| (v - 0.25).abs() < 1e-6));
}

#[test]
fn resize_keeps_channels_and_labels() {
    let dir = office_fixture();
    let a = load_folder(dir.path(), "amazon", 16).unwrap();
    let r = resize(&a, 32, 32);
    assert_eq!((r.n, r.channels, r.height, r.width), (3, 3, 32, 32));
    assert_eq!(r.labels, a.labels);
    assert_eq!(r.class_names, a.class_names);
    // Red image still red, channel by channel.
    assert_eq!(r.pixel(0, 0, 31, 31), 1.0);
    assert_eq!(r.pixel(0, 1, 0, 0), 0.0);

    // Grey to RGB: channels repeated.
    let g = one_image(1, 2, vec![0.1, 0.9]);
    let rgb = g.with_channels(3).unwrap();
    assert_eq!(rgb.images, vec![0.1, 0.9, 0.1, 0.9, 0.1, 0.9]);
    assert!(a.with_channels(1).is_err());
}
