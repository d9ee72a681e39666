//! hyper-infer
