//! Local SmolLM2 chat backend (GGUF); owned by another helper.
