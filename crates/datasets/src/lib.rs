//! Tasks and splits for every data source hyper reads: UCI tabular sets and user CSVs,
//! GLUE TSV (with the GLUE metrics), and images (IDX, CSV pixels, sklearn digits, folders).
//!
//! Loaders return raw, typed tables; preprocessing (fill, encode, scale, split) is separate
//! so the statistics fitted on a training split can be saved with a generated model.

pub mod assets;
pub mod catalog;
pub mod error;
pub mod glue;
pub mod images;
pub mod metrics;
pub mod paths;
pub mod preprocess;
pub mod prior;
pub mod tabular;
pub mod text_csv;
pub mod uci;
pub mod user_csv;

pub use catalog::Modality;
pub use error::{DataError, Result};
pub use tabular::{Column, ColumnKind, Table};
