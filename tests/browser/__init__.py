"""End-to-end tests: the app started with `make run`, driven in headless Chromium."""
