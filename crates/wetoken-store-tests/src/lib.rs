//! No code: `tests/` runs the store conformance suite
//! (`wetoken_core::conformance`) on every backend and checks that every
//! backend's migrations carry the same versions and names.
