//! `bgw-cloud`: the reference control plane.
