"""Client integrations: a generic LLM-call lifecycle plus one thin adapter per client library."""
