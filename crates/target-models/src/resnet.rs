//! resnet (in progress)
