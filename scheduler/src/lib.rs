//! Bandwidth schedules, maintenance windows and the shared upload throttle.
