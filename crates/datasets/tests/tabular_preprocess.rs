//! Preprocessing: deterministic 60/10/30 split, fill and min-max fitted on train only,
//! re-encoding new tables with a saved preprocessor, and rejection of bad values.

use std::path::PathBuf;

use datasets::preprocess::{
    permutation, split_and_fit, split_indices, split_sizes, Preprocessor, SplitMix64, DEFAULT_SEED,
};
use datasets::user_csv::{load_csv, CsvOptions};
use datasets::{Column, ColumnKind, Table};

fn fixture(name: &str) -> Table {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tabular")
        .join(name);
    load_csv(&p, &CsvOptions::default()).unwrap()
}

fn numeric_table(rows: Vec<Vec<f64>>, labels: Vec<usize>) -> Table {
    let nf = rows[0].len();
    Table {
        name: "t".into(),
        columns: (0..nf)
            .map(|j| Column {
                name: format!("c{j}"),
                kind: ColumnKind::Numeric,
            })
            .collect(),
        features: rows,
        target: "y".into(),
        class_names: vec!["a".into(), "b".into()],
        labels,
        source: "in-memory".into(),
        target_values: None,
    }
}

#[test]
fn splitmix64_matches_the_reference_stream() {
    // Published test vector of SplitMix64 for seed 1234567.
    let mut r = SplitMix64::new(1_234_567);
    assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
    assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
    assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
}

#[test]
fn split_sizes_are_60_10_30() {
    assert_eq!(split_sizes(150), Some((90, 15, 45)));
    assert_eq!(split_sizes(178), Some((106, 18, 54)));
    assert_eq!(split_sizes(10), Some((6, 1, 3)));
    assert_eq!(split_sizes(3), Some((1, 1, 1)));
    assert_eq!(split_sizes(2), None);
    for n in 3..300 {
        let (a, b, c) = split_sizes(n).unwrap();
        assert_eq!(a + b + c, n);
        assert!(a >= 1 && b >= 1 && c >= 1, "{n}");
    }
}

#[test]
fn split_is_deterministic_and_a_partition() {
    let (tr, va, te) = split_indices(1_000, DEFAULT_SEED).unwrap();
    assert_eq!((tr.len(), va.len(), te.len()), (600, 100, 300));
    assert_eq!(
        split_indices(1_000, DEFAULT_SEED).unwrap(),
        (tr.clone(), va.clone(), te.clone())
    );
    let mut all: Vec<usize> = tr.iter().chain(&va).chain(&te).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..1_000).collect::<Vec<_>>());
    // Another seed gives another split, and the split is shuffled (not 0..600).
    assert_ne!(split_indices(1_000, DEFAULT_SEED + 1).unwrap().0, tr);
    assert_ne!(tr, (0..600).collect::<Vec<_>>());
    // The permutation is what the stream dictates: Fisher–Yates from the top.
    let mut r = SplitMix64::new(7);
    let mut expect: Vec<usize> = (0..5).collect();
    for i in (1..5).rev() {
        let j = ((r.next_u64() as u128 * (i as u128 + 1)) >> 64) as usize;
        expect.swap(i, j);
    }
    assert_eq!(permutation(5, 7), expect);
}

#[test]
fn iris_split_min_max_fitted_on_train_only() {
    let t = datasets::uci::load_builtin("iris").unwrap();
    let s = split_and_fit(&t, DEFAULT_SEED).unwrap();
    assert_eq!(
        (s.train.n_rows(), s.val.n_rows(), s.test.n_rows()),
        (90, 15, 45)
    );
    assert_eq!(s.train.n_features, 4);
    assert_eq!(s.train.x.len(), 90 * 4);
    let (tr, va, te) = split_indices(150, DEFAULT_SEED).unwrap();
    for j in 0..4 {
        let col: Vec<f64> = tr.iter().map(|&i| t.features[i][j]).collect();
        let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(s.preprocessor.min[j], lo);
        assert_eq!(s.preprocessor.max[j], hi);
        let train_col: Vec<f32> = (0..90).map(|r| s.train.row(r)[j]).collect();
        assert!(train_col.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(train_col.contains(&0.0) && train_col.contains(&1.0));
        // Held-out rows use the train range.
        let raw = t.features[te[0]][j];
        assert!((s.test.row(0)[j] as f64 - (raw - lo) / (hi - lo)).abs() < 1e-6);
        let raw = t.features[va[3]][j];
        assert!((s.val.row(3)[j] as f64 - (raw - lo) / (hi - lo)).abs() < 1e-6);
    }
    assert_eq!(
        s.train.y,
        tr.iter().map(|&i| t.labels[i]).collect::<Vec<_>>()
    );
    // Same seed, same result; a different seed, different rows.
    assert_eq!(split_and_fit(&t, DEFAULT_SEED).unwrap().test, s.test);
    assert_ne!(split_and_fit(&t, 1).unwrap().test.y, s.test.y);
}

#[test]
fn fill_values_mean_and_mode_on_train() {
    let t = fixture("people.csv");
    let all: Vec<usize> = (0..t.n_rows()).collect();
    let p = Preprocessor::fit(&t, &all).unwrap();
    // age: (34+51+27+63+45+38+29)/7; city: Berlin ×3 (level 0); income: mean of the six
    // present values; smoker: `no` ×4 (level 0).
    assert_eq!(p.fill[0], 287.0 / 7.0);
    assert_eq!(p.fill[1], 0.0);
    assert_eq!(p.fill[2], 256_000.5 / 6.0);
    assert_eq!(p.fill[3], 0.0);
    // Fitted on rows 0..3 only: the mode of city is then Paris, Berlin or paris (one each)
    // and ties go to the smallest level (Berlin = 0); the mean of income is (52000.5+31000)/2.
    let p = Preprocessor::fit(&t, &[0, 1, 2]).unwrap();
    assert_eq!(p.fill[2], 83_000.5 / 2.0);
    assert_eq!(p.fill[1], 0.0);
    let x = p.transform_table(&t).unwrap();
    // Row 1's income is missing → fill → scaled (41500.25 - 31000) / 21000.5.
    assert!((x[4 + 2] as f64 - (41_500.25 - 31_000.0) / 21_000.5).abs() < 1e-6);
    assert!(x.iter().all(|v| v.is_finite()));
}

#[test]
fn constant_column_scales_to_zero() {
    let rows: Vec<Vec<f64>> = (0..10).map(|i| vec![5.0, i as f64]).collect();
    let t = numeric_table(rows, (0..10).map(|i| i % 2).collect());
    let s = split_and_fit(&t, DEFAULT_SEED).unwrap();
    for split in [&s.train, &s.val, &s.test] {
        assert!(split.x.chunks(2).all(|r| r[0] == 0.0 && r[1].is_finite()));
    }
}

#[test]
fn infinite_and_unfillable_values_are_rejected() {
    let mut rows: Vec<Vec<f64>> = (0..10).map(|i| vec![i as f64, 1.0]).collect();
    rows[4][1] = f64::INFINITY;
    let t = numeric_table(rows, (0..10).map(|i| i % 2).collect());
    let msg = split_and_fit(&t, DEFAULT_SEED).unwrap_err().to_string();
    assert!(
        msg.contains("data row 5") && msg.contains("`c1`") && msg.contains("not finite"),
        "{msg}"
    );

    let rows: Vec<Vec<f64>> = (0..10).map(|i| vec![i as f64, f64::NAN]).collect();
    let t = numeric_table(rows, (0..10).map(|i| i % 2).collect());
    let msg = split_and_fit(&t, DEFAULT_SEED).unwrap_err().to_string();
    assert!(
        msg.contains("`c1`") && msg.contains("no values in the training split"),
        "{msg}"
    );

    let t = numeric_table(vec![vec![1.0], vec![2.0]], vec![0, 1]);
    let msg = split_and_fit(&t, DEFAULT_SEED).unwrap_err().to_string();
    assert!(msg.contains("at least 3"), "{msg}");
}

#[test]
fn transform_table_reencodes_like_training() {
    let t = fixture("people.csv");
    let s = split_and_fit(&t, DEFAULT_SEED).unwrap();
    let p = &s.preprocessor;
    let x = p.transform_table(&t).unwrap();
    let (tr, _, te) = split_indices(t.n_rows(), DEFAULT_SEED).unwrap();
    assert_eq!(&x[tr[0] * 4..tr[0] * 4 + 4], s.train.row(0));
    assert_eq!(&x[te[1] * 4..te[1] * 4 + 4], s.test.row(1));

    // Columns in another order, other level sets, missing cells: matched by name.
    let new = fixture("people_new.csv");
    let xn = p.transform_table(&new).unwrap();
    assert_eq!(xn.len(), 8);
    let city = |name: &str| match &p.columns[1].kind {
        ColumnKind::Categorical { levels } => levels.iter().position(|l| l == name).unwrap() as f64,
        _ => unreachable!(),
    };
    // Min-max with the train range; a column constant on train scales to 0.
    let scaled = |j: usize, v: f64| {
        let range = p.max[j] - p.min[j];
        if range > 0.0 {
            ((v - p.min[j]) / range) as f32
        } else {
            0.0
        }
    };
    assert_eq!(xn[0], scaled(0, 70.0));
    assert_eq!(xn[1], scaled(1, city("Rome")));
    assert_eq!(xn[2], scaled(2, 80_000.0));
    assert_eq!(xn[3], scaled(3, 1.0));
    assert_eq!(xn[5], scaled(1, city("Paris")));
    assert_eq!(
        xn[6],
        scaled(2, p.fill[2]),
        "missing income gets the fill value"
    );
    assert_eq!(
        xn[7],
        scaled(3, p.fill[3]),
        "missing smoker gets the fill value"
    );
    assert_eq!(p.encode_labels(&new).unwrap(), [1, 0]);

    // A level never seen in training: an error naming column and value.
    let msg = p
        .transform_table(&fixture("people_madrid.csv"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("`city`") && msg.contains("`Madrid`") && msg.contains("data row 1"),
        "{msg}"
    );

    // Text where training saw numbers.
    let msg = p
        .transform_table(&fixture("people_text_age.csv"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("non-numeric value `old` in numeric column `age`"),
        "{msg}"
    );

    // A different column set: names what is missing and what is extra.
    let msg = p
        .transform_table(&fixture("people_no_income.csv"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("missing columns: income"), "{msg}");
    assert!(msg.contains("unexpected columns: height"), "{msg}");
}

#[test]
fn preprocessor_round_trips_through_json() {
    let t = fixture("people.csv");
    let p = split_and_fit(&t, DEFAULT_SEED).unwrap().preprocessor;
    let json = serde_json::to_string(&p).unwrap();
    let back: Preprocessor = serde_json::from_str(&json).unwrap();
    assert_eq!(back, p);
    assert_eq!(back.class_names, ["healthy", "sick"]);
    assert_eq!(back.columns[1].name, "city");
    assert_eq!(
        back.transform_table(&t).unwrap(),
        p.transform_table(&t).unwrap()
    );
}

/// `clip_to_training_range` clamps the already-scaled validation and test rows to [0, 1]
/// and makes the preprocessor clamp rows it encodes later; the training rows are unchanged.
#[test]
fn clipping_clamps_every_split_and_later_rows_to_the_training_range() {
    // Training rows hold 0..=17; every held-out row lies far outside (±100).
    let (tr, _, _) = split_indices(30, DEFAULT_SEED).unwrap();
    let rows: Vec<Vec<f64>> = (0..30)
        .map(|i| match tr.iter().position(|&r| r == i) {
            Some(k) => vec![k as f64],
            None => vec![if i % 2 == 0 { 100.0 } else { -100.0 }],
        })
        .collect();
    let t = numeric_table(rows, (0..30).map(|i| i % 2).collect());
    let plain = split_and_fit(&t, DEFAULT_SEED).unwrap();
    let mut s = plain.clone();
    s.clip_to_training_range();
    assert!(s.preprocessor.clip && !plain.preprocessor.clip);
    assert_eq!(s.train.x, plain.train.x);
    for (c, p) in [(&s.val, &plain.val), (&s.test, &plain.test)] {
        for (a, b) in c.x.iter().zip(&p.x) {
            assert_eq!(*a, b.clamp(0.0, 1.0));
        }
    }
    // Some held-out row lies outside the training range, so the clamp did something.
    assert!(plain
        .test
        .x
        .iter()
        .chain(&plain.val.x)
        .any(|v| !(0.0..=1.0).contains(v)));
    let far = numeric_table(vec![vec![-100.0], vec![500.0]], vec![0, 1]);
    assert_eq!(
        s.preprocessor.transform_table(&far).unwrap(),
        vec![0.0, 1.0]
    );
}
