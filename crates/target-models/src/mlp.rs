//! mlp (in progress)
