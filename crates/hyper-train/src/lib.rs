//! hyper-train
