"""The app's wiring: configuration, model providers, identity, presets and pricing."""
