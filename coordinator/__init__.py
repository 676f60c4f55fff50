"""The coordinator: public API, session driver and key registry. It holds no secret."""
