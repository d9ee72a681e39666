//! Random translations of meta-training batches. The generator memorises its ≤ 4,000
//! images per domain (training loss → 0 while validation loss rises, see
//! `checkpoints/cv/README.md`); moving each image a few pixels is the usual remedy for
//! small image sets. Used inside Algorithm 1's target loss, and by the reproduction's
//! trained rows when `baseline.augment_shift` asks; never for validation, scoring or a
//! user's images.

use candle_core::Tensor;
use datasets::images::ImageSet;
use hyper_core::ParamMap;
use hyper_infer::vision;
use rand::{rngs::StdRng, Rng, SeedableRng};
use target_models::resnet::ResNet;

/// A seed that is a function of the batch (domain and rows), so a resumed run draws the
/// same shifts as an uninterrupted one without storing any state.
pub fn batch_seed(seed: u64, task: usize, rows: &[usize]) -> u64 {
    // FNV-1a over the task index and the row indices.
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for v in std::iter::once(task).chain(rows.iter().copied()) {
        h ^= v as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Images `rows` of `set`, each moved by its own `(dy, dx)` drawn uniformly from
/// `[−max_shift, max_shift]²`; uncovered pixels take the image's top-left value in that
/// channel (the background of digit and clothing images). `max_shift` 0 copies them.
pub fn random_shift(set: &ImageSet, rows: &[usize], max_shift: usize, seed: u64) -> ImageSet {
    let mut rng = StdRng::seed_from_u64(seed);
    let s = max_shift as i64;
    let (c, h, w) = (set.channels, set.height, set.width);
    let mut out = vision::subset(set, rows);
    for img in out.images.chunks_exact_mut(set.image_len()) {
        let dy = rng.random_range(-s..=s) as isize;
        let dx = rng.random_range(-s..=s) as isize;
        let moved = shifted(img, c, h, w, dy, dx);
        img.copy_from_slice(&moved);
    }
    out
}

/// The training loss of `rows` of `set`, each image shifted as [`random_shift`] draws
/// them for this batch ([`batch_seed`] of `seed`, `task` and the rows); `max_shift` 0 is
/// the plain [`vision::batch_loss`] (no copy). Meta-training and the reproduction's trained
/// rows both train through this.
pub fn training_loss(
    model: &ResNet,
    params: &ParamMap,
    set: &ImageSet,
    rows: &[usize],
    max_shift: usize,
    (seed, task): (u64, usize),
) -> anyhow::Result<Tensor> {
    if max_shift == 0 {
        return vision::batch_loss(model, params, set, rows, true);
    }
    let batch = random_shift(set, rows, max_shift, batch_seed(seed, task, rows));
    let all: Vec<usize> = (0..batch.n).collect();
    vision::batch_loss(model, params, &batch, &all, true)
}

/// `img` (`c×h×w`) with pixel `(y, x)` moved to `(y + dy, x + dx)`.
fn shifted(img: &[f32], c: usize, h: usize, w: usize, dy: isize, dx: isize) -> Vec<f32> {
    let mut out = Vec::with_capacity(img.len());
    for ch in img.chunks_exact(h * w).take(c) {
        let fill = ch[0];
        for y in 0..h as isize {
            for x in 0..w as isize {
                let (sy, sx) = (y - dy, x - dx);
                let inside = (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                out.push(if inside {
                    ch[sy as usize * w + sx as usize]
                } else {
                    fill
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ImageSet {
        // Two 1×3×3 images: 1..9 and 10..18.
        ImageSet {
            images: (1..=18).map(|v| v as f32).collect(),
            labels: vec![4, 7],
            n: 2,
            channels: 1,
            height: 3,
            width: 3,
            class_names: (0..10).map(|c| c.to_string()).collect(),
            source: "test".into(),
        }
    }

    #[test]
    fn shift_moves_pixels_and_fills_with_the_corner_value() {
        let img: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        // Down by one, left by one: row 0 and column 2 are uncovered (fill = 1).
        assert_eq!(
            shifted(&img, 1, 3, 3, 1, -1),
            vec![1., 1., 1., 2., 3., 1., 5., 6., 1.]
        );
        assert_eq!(shifted(&img, 1, 3, 3, 0, 0), img);
    }

    #[test]
    fn zero_shift_copies_the_rows_and_labels() {
        let s = set();
        let out = random_shift(&s, &[1, 0], 0, 9);
        assert_eq!(out.labels, vec![7, 4]);
        assert_eq!(out.image(0), s.image(1));
        assert_eq!(out.image(1), s.image(0));
    }

    #[test]
    fn shifts_are_a_function_of_the_batch_and_stay_in_range() {
        let s = set();
        let a = random_shift(&s, &[0, 1, 0], 1, batch_seed(3, 0, &[0, 1, 0]));
        let b = random_shift(&s, &[0, 1, 0], 1, batch_seed(3, 0, &[0, 1, 0]));
        assert_eq!(a.images, b.images);
        assert_ne!(batch_seed(3, 0, &[0, 1]), batch_seed(3, 1, &[0, 1]));
        assert_ne!(batch_seed(3, 0, &[0, 1]), batch_seed(3, 0, &[1, 0]));
        // Every output image is one of the nine shifts of its source.
        for (k, &src) in [0usize, 1, 0].iter().enumerate() {
            let any = (-1..=1)
                .any(|dy| (-1..=1).any(|dx| shifted(s.image(src), 1, 3, 3, dy, dx) == a.image(k)));
            assert!(any, "image {k}");
        }
    }
}
