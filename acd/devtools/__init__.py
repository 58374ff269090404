"""Developer tools that check the code base itself (not used by the server)."""
