//! Core abstractions shared by every modality: parameter specs and maps, the task
//! metadata schema, functional layers that take their weights as inputs, the Parameter
//! Generator, and checkpoint I/O.

pub mod metadata;
pub mod param;

pub use metadata::Metadata;
pub use param::{ParamMap, ParamRole, ParamSpec};
