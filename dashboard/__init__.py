"""dashboard: the FastAPI application — REST, websockets and the offline deck.gl pages."""
