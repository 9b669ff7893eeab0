//! Wire types of the gateway protocol spoken between `bgw-agent` and `bgw-cloud`.
