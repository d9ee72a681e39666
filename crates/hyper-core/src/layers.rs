//! Functional layers: weights are arguments, so the same code runs on generated tensors
//! (graph kept back to the generator) and on trainable `Var`s.

use candle_core::{DType, Device, Result, Tensor};
use rand::Rng;

/// `y = x · wᵀ + b` with PyTorch's `[out, in]` weight layout; `x` is `[n, in]`.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let y = x.matmul(&w.t()?)?;
    match b {
        Some(b) => y.broadcast_add(b),
        None => Ok(y),
    }
}

/// Inverted dropout; identity when `!train` or `p == 0`.
pub fn dropout(x: &Tensor, p: f32, train: bool) -> Result<Tensor> {
    if !train || p <= 0.0 {
        return Ok(x.clone());
    }
    candle_nn::ops::dropout(x, p)
}

/// Mean cross-entropy of `logits [n, c]` against `labels [n]` (u32). Built from
/// differentiable primitives (log-softmax via max/exp/sum), so it trains.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    candle_nn::loss::cross_entropy(logits, labels)
}

/// PyTorch's default `nn.Linear` init bound `1/sqrt(fan_in)` (kaiming-uniform with a=√5
/// gives the same bound for the weight).
pub fn default_bound(fan_in: usize) -> f64 {
    1.0 / (fan_in.max(1) as f64).sqrt()
}

/// A tensor of `shape` drawn from U(-bound, bound) with the caller's seeded RNG.
pub fn uniform<R: Rng>(rng: &mut R, shape: &[usize], bound: f64, dev: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let b = bound as f32;
    let data: Vec<f32> = (0..n)
        .map(|_| {
            if b > 0.0 {
                rng.random_range(-b..=b)
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(data, shape, dev)
}

/// Fraction of rows whose argmax equals the label.
pub fn accuracy(logits: &Tensor, labels: &[usize]) -> Result<f64> {
    if labels.is_empty() {
        return Ok(0.0);
    }
    let pred = logits
        .argmax(candle_core::D::Minus1)?
        .to_dtype(DType::U32)?
        .to_vec1::<u32>()?;
    let ok = pred
        .iter()
        .zip(labels)
        .filter(|(p, y)| **p as usize == **y)
        .count();
    Ok(ok as f64 / labels.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_matches_hand_computation() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[1f32, 2.0]], &dev).unwrap();
        let w = Tensor::new(&[[1f32, 0.0], [0.5, -1.0], [2.0, 3.0]], &dev).unwrap();
        let b = Tensor::new(&[0.1f32, 0.2, 0.3], &dev).unwrap();
        let y = linear(&x, &w, Some(&b)).unwrap().to_vec2::<f32>().unwrap();
        let want = [1.1f32, -1.3, 8.3];
        for (a, e) in y[0].iter().zip(want) {
            assert!((a - e).abs() < 1e-6, "{a} vs {e}");
        }
        let logits = Tensor::new(&[[0f32, 1.0], [3.0, 1.0]], &dev).unwrap();
        assert_eq!(accuracy(&logits, &[1, 1]).unwrap(), 0.5);
    }
}
