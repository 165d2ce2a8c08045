"""Event fan-out: after a change commits, its event goes out to every node's gateway."""
