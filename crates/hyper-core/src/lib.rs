//! Core abstractions shared by every modality: parameter specs and maps, the task
//! metadata schema, functional layers that take their weights as inputs, the Parameter
//! Generator, and checkpoint I/O.

pub mod attention;
pub mod bmm;
pub mod checkpoint;
pub mod data_generator;
pub mod denormals;
pub mod frozen;
pub mod fused;
pub mod generator;
pub mod im2col;
pub mod io;
pub mod kernels;
pub mod layers;
pub mod lora_generator;
pub mod malloc;
pub mod metadata;
pub mod optim;
pub mod param;
pub mod readout;
pub mod runtime;

pub use generator::{GeneratorConfig, ParamGenerator, Resolution, TaskSpec};
pub use metadata::Metadata;
pub use param::{ParamMap, ParamRole, ParamSpec};
