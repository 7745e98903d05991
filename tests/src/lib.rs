//! meterlink-sim and test helpers.
