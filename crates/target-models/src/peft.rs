//! peft (in progress)
