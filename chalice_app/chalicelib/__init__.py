"""The api Lambda's logic: interactions, commands, replies and their wiring (see ``bootstrap``)."""
