"""HTTP and WebSocket transport only: validate, authenticate, call one service, answer."""
