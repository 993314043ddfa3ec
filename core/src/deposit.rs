//! deposit (in progress).
