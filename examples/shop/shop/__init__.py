"""A small shop API: items with stock, and orders that take from it (dbbench's example of a user's service)."""
