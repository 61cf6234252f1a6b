"""The streaming path: message decoding, scoring, routing to tables, the query, the producer."""
