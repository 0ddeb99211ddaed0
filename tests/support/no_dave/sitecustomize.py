"""Test wiring only: a Python started with this folder on PYTHONPATH runs discord.py as a build
without DAVE would (it offers ``max_dave_protocol_version`` 0), so the emulator can show that
Discord refuses it with 4017. Nothing in the product imports this."""

import discord.voice_state

discord.voice_state.VoiceConnectionState.max_dave_protocol_version = property(lambda self: 0)  # type: ignore[assignment,method-assign]
