//! Nothing here: this package exists to hold the end-to-end test binary in `e2e/`.
