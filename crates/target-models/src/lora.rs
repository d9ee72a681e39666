//! lora (in progress)
