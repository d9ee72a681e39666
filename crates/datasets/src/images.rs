//! images (in progress)
