//! Metrics against hand-computed values (arithmetic in the comments) and the examples in
//! the sklearn / scipy documentation.

use datasets::metrics::{
    accuracy, average_ranks, f1_binary, matthews_corrcoef, pearson, regression_scores, spearman,
    top_k_accuracy, Metric,
};
use datasets::DataError;

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn accuracy_values() {
    // sklearn accuracy_score doc: y_pred [0,2,1,3], y_true [0,1,2,3] -> 2/4 = 0.5.
    close(accuracy(&[0, 2, 1, 3], &[0, 1, 2, 3]).unwrap(), 0.5);
    // 4 of 5 correct.
    close(accuracy(&[1, 1, 0, 0, 1], &[1, 1, 0, 0, 0]).unwrap(), 0.8);
}

#[test]
fn f1_values() {
    // pred [1,1,1,0,0,0,1], gold [1,1,0,1,0,0,0]: tp=2 (pos 0,1), fp=2 (pos 2,6), fn=1 (pos 3)
    // F1 = 2·2 / (2·2 + 2 + 1) = 4/7.
    close(
        f1_binary(&[1, 1, 1, 0, 0, 0, 1], &[1, 1, 0, 1, 0, 0, 0]).unwrap(),
        4.0 / 7.0,
    );
    // All correct positives: 1.0. No positives anywhere: 0.0 (sklearn zero_division default).
    close(f1_binary(&[1, 0, 1], &[1, 0, 1]).unwrap(), 1.0);
    close(f1_binary(&[0, 0], &[0, 0]).unwrap(), 0.0);
    // Never predicting the positive class: tp=0 -> 0.
    close(f1_binary(&[0, 0, 0], &[1, 0, 1]).unwrap(), 0.0);
    assert!(f1_binary(&[2, 0], &[1, 0]).is_err());
}

#[test]
fn mcc_values() {
    // sklearn doc: y_true [+1,+1,+1,-1], y_pred [+1,-1,+1,+1] -> -0.333...
    // (mapped -1 -> 0): tp=2, tn=0, fp=1, fn=1: (2·0 - 1·1) / sqrt(3·3·1·1) = -1/3.
    close(
        matthews_corrcoef(&[1, 0, 1, 1], &[1, 1, 1, 0]).unwrap(),
        -1.0 / 3.0,
    );
    // Binary: pred [1,1,0,0,1,0], gold [1,0,0,0,1,1]: tp=2 tn=2 fp=1 fn=1
    // (2·2 - 1·1) / sqrt(3·3·3·3) = 3/9 = 1/3.
    close(
        matthews_corrcoef(&[1, 1, 0, 0, 1, 0], &[1, 0, 0, 0, 1, 1]).unwrap(),
        1.0 / 3.0,
    );
    // 3 classes: gold [0,0,1,1,2,2], pred [0,1,1,2,2,0]: c=3, s=6, p_k=t_k=[2,2,2]
    // (3·6 - 12) / sqrt((36-12)(36-12)) = 6/24 = 0.25.
    close(
        matthews_corrcoef(&[0, 1, 1, 2, 2, 0], &[0, 0, 1, 1, 2, 2]).unwrap(),
        0.25,
    );
    close(matthews_corrcoef(&[0, 1], &[0, 1]).unwrap(), 1.0);
    close(matthews_corrcoef(&[1, 0], &[0, 1]).unwrap(), -1.0);
    // Constant predictions: denominator 0 -> 0.0 as sklearn, not NaN.
    close(matthews_corrcoef(&[1, 1, 1], &[0, 1, 0]).unwrap(), 0.0);
    close(matthews_corrcoef(&[0, 1, 0], &[1, 1, 1]).unwrap(), 0.0);
    // Label values are only identities: huge ones behave like 0/1.
    close(
        matthews_corrcoef(&[usize::MAX, 7], &[usize::MAX, 7]).unwrap(),
        1.0,
    );
}

#[test]
fn pearson_values() {
    // scipy pearsonr doc: x [1,2,3,4,5], y [10,9,2.5,6,4] -> -0.7426106572325057.
    // By hand: mx=3, my=6.3; sxy = -2·3.7 -1·2.7 + 0 + 1·(-0.3) + 2·(-2.3) = -15;
    // sxx = 10; syy = 13.69+7.29+14.44+0.09+5.29 = 40.8; r = -15/sqrt(408).
    let r = pearson(&[1., 2., 3., 4., 5.], &[10., 9., 2.5, 6., 4.]).unwrap();
    close(r, -15.0 / 408f64.sqrt());
    assert!((r + 0.7426106572325057).abs() < 1e-12);
    close(pearson(&[1., 2., 3.], &[2., 4., 6.]).unwrap(), 1.0);
}

#[test]
fn spearman_values() {
    // scipy spearmanr doc: [1,2,3,4,5] vs [5,6,7,8,7] -> 0.8207826816681233.
    // Ranks of y with the tie averaged: [1,2,3.5,5,3.5]; mean 3, deviations
    // x: [-2,-1,0,1,2], y: [-2,-1,0.5,2,0.5]; sxy = 4+1+0+2+1 = 8, sxx = 10,
    // syy = 4+1+0.25+4+0.25 = 9.5; rho = 8/sqrt(95).
    let rho = spearman(&[1., 2., 3., 4., 5.], &[5., 6., 7., 8., 7.]).unwrap();
    close(rho, 8.0 / 95f64.sqrt());
    assert!((rho - 0.8207826816681233).abs() < 1e-12);
    // Monotone but non-linear: rank correlation 1, Pearson below 1.
    let x = [1., 2., 3., 4.];
    let y = [1., 8., 27., 64.];
    close(spearman(&x, &y).unwrap(), 1.0);
    assert!(pearson(&x, &y).unwrap() < 0.99);
}

#[test]
fn ranks_average_ties() {
    // scipy rankdata doc: [0,2,3,2] -> [1, 2.5, 4, 2.5].
    assert_eq!(average_ranks(&[0., 2., 3., 2.]), vec![1.0, 2.5, 4.0, 2.5]);
    assert_eq!(average_ranks(&[7., 7., 7.]), vec![2.0, 2.0, 2.0]);
}

#[test]
fn top_k_values() {
    // sklearn top_k_accuracy_score doc: k=2 -> 0.75 (the last row's target 2 ranks third).
    let scores = [
        0.5, 0.2, 0.2, //
        0.3, 0.4, 0.2, //
        0.2, 0.4, 0.3, //
        0.7, 0.2, 0.1,
    ];
    let gold = [0, 1, 2, 2];
    close(top_k_accuracy(&scores, 3, &gold, 2).unwrap(), 0.75);
    // k=1: rows 0 and 1 are argmax hits -> 0.5. k=3 = n_classes -> 1.0.
    close(top_k_accuracy(&scores, 3, &gold, 1).unwrap(), 0.5);
    close(top_k_accuracy(&scores, 3, &gold, 3).unwrap(), 1.0);
    // Ties go to the lower class index: row [0.5, 0.5], target 1 is second.
    close(top_k_accuracy(&[0.5, 0.5], 2, &[1], 1).unwrap(), 0.0);
    close(top_k_accuracy(&[0.5, 0.5], 2, &[0], 1).unwrap(), 1.0);
}

fn is_metric_err<T: std::fmt::Debug>(r: Result<T, DataError>, needle: &str) {
    match r {
        Err(e @ DataError::Metric { .. }) => {
            assert!(
                e.to_string().contains(needle),
                "`{e}` should mention `{needle}`"
            )
        }
        other => panic!("expected a metric error, got {other:?}"),
    }
}

#[test]
fn degenerate_inputs_are_errors_not_nan() {
    is_metric_err(accuracy(&[], &[]), "no examples");
    is_metric_err(
        accuracy(&[1, 0], &[1]),
        "length mismatch: 2 predictions vs 1 targets",
    );
    is_metric_err(f1_binary(&[], &[]), "no examples");
    is_metric_err(matthews_corrcoef(&[1], &[]), "length mismatch");
    is_metric_err(
        pearson(&[1., 1., 1.], &[1., 2., 3.]),
        "predictions are constant",
    );
    is_metric_err(
        pearson(&[1., 2., 3.], &[4., 4., 4.]),
        "targets are constant",
    );
    is_metric_err(pearson(&[1., f64::NAN], &[1., 2.]), "not finite");
    is_metric_err(spearman(&[2., 2.], &[1., 2.]), "constant");
    is_metric_err(spearman(&[], &[]), "no examples");
    is_metric_err(top_k_accuracy(&[0.1, 0.9], 2, &[1], 0), "k must be");
    is_metric_err(
        top_k_accuracy(&[0.1, 0.9, 0.3], 2, &[1], 1),
        "3 values, expected 1 targets × 2 classes",
    );
    is_metric_err(top_k_accuracy(&[0.1, 0.9], 2, &[2], 1), "out of range");
    is_metric_err(top_k_accuracy(&[0.1, f32::NAN], 2, &[0], 1), "not finite");
    is_metric_err(top_k_accuracy(&[], 2, &[], 1), "no examples");
}

#[test]
fn metric_names() {
    assert_eq!(Metric::Matthews.name(), "mcc");
    assert_eq!(Metric::TopK(5).to_string(), "top5");
}

/// sklearn's `r2_score` docstring example: y_true [3, -0.5, 2, 7], y_pred [2.5, 0.0, 2, 8]
/// → 0.948…; MSE = (0.25 + 0.25 + 0 + 1) / 4 = 0.375, MAE = (0.5 + 0.5 + 0 + 1) / 4 = 0.5.
#[test]
fn regression_scores_values() {
    let s = regression_scores(&[2.5, 0.0, 2.0, 8.0], &[3.0, -0.5, 2.0, 7.0]).unwrap();
    // SS_tot: mean 2.875 → 0.015625 + 11.390625 + 0.765625 + 17.015625 = 29.1875.
    close(s.r2, 1.0 - 1.5 / 29.1875);
    close(s.rmse, 0.375f64.sqrt());
    close(s.mae, 0.5);
    // Predicting the mean scores R² = 0.
    close(
        regression_scores(&[2.875; 4], &[3.0, -0.5, 2.0, 7.0])
            .unwrap()
            .r2,
        0.0,
    );
    assert!(regression_scores(&[1.0, 2.0], &[5.0, 5.0]).is_err());
    assert!(regression_scores(&[f64::NAN, 2.0], &[1.0, 5.0]).is_err());
    assert!(regression_scores(&[1.0], &[1.0, 5.0]).is_err());
}
