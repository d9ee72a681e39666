//! glue (in progress)
