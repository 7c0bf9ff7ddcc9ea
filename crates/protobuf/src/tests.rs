//! Unit tests of the table and the codec (the kubectl-based tests are in `tests/`).
