//! One module per subcommand.

pub mod describe;
pub mod eval;
pub mod generate;
pub mod predict;
