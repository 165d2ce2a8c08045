"""Live delivery: which connected device gets which event, with per-device backpressure."""
