"""The HTTP side (twisted.web): the REST API for agents, queues, calls and reload."""
