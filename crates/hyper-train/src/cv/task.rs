//! One image domain as a meta-training task: its prepared training, validation and test
//! images, requirements written from its data, and its class texts.

use std::time::Instant;

use datasets::images::ImageSet;
use hyper_infer::vision::{self, BackboneConfig, ImageSetName};

pub struct ImageTask {
    pub set: ImageSetName,
    pub train: ImageSet,
    /// Held out from the training split for checkpoint selection.
    pub val: ImageSet,
    pub test: ImageSet,
    pub requirements: Vec<String>,
    pub class_names: Vec<String>,
    /// What each head row is generated from ([`vision::class_text`]).
    pub label_texts: Vec<String>,
    /// Reading, splitting and resizing (counted in every method's E2E).
    pub load_secs: f64,
}

impl ImageTask {
    /// `train_cap` images from the front of the training split (after holding out the
    /// last `val` for validation), the first `test_cap` test images (0 = all), and
    /// `n_req` requirements written from the training split as loaded (its resolution
    /// and channels, before [`vision::prepare`] for `backbone`).
    pub fn load(
        set: ImageSetName,
        backbone: &BackboneConfig,
        train_cap: usize,
        val: usize,
        test_cap: usize,
        n_req: usize,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let t0 = Instant::now();
        let (train_raw, test_raw) = set.load()?;
        let summary = vision::image_summary(&train_raw, set.name(), Some(set.description()));
        let requirements = vision::image_requirements(&summary, n_req, seed)?;
        let n = train_raw.n;
        let n_val = val.min(n / 5);
        let n_train = train_cap.min(n - n_val);
        let train_rows: Vec<usize> = (0..n_train).collect();
        let val_rows: Vec<usize> = (n - n_val..n).collect();
        let n_test = if test_cap == 0 {
            test_raw.n
        } else {
            test_cap.min(test_raw.n)
        };
        let test_rows: Vec<usize> = (0..n_test).collect();
        let prep =
            |s: &ImageSet, rows: &[usize]| vision::prepare(&vision::subset(s, rows), backbone);
        let class_names = train_raw.class_names.clone();
        Ok(Self {
            set,
            train: prep(&train_raw, &train_rows)?,
            val: prep(&train_raw, &val_rows)?,
            test: prep(&test_raw, &test_rows)?,
            requirements,
            label_texts: class_names.iter().map(|c| vision::class_text(c)).collect(),
            class_names,
            load_secs: t0.elapsed().as_secs_f64(),
        })
    }

    pub fn name(&self) -> &'static str {
        self.set.name()
    }
}
