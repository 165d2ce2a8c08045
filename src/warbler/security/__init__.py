"""Security primitives: password hashing, secret tokens, signatures."""
