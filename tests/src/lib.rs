//! Test support shared by the whole-system tests.
