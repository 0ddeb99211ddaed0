"""Linked accounts: the linking flows, their OAuth clients and the token vault."""
