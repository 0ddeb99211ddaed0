"""The per-guild voice worker: ``python -m voice_task``.

It claims the guild's lease, joins the recorded voice channel with discord.py, plays the queue
with FFmpeg and reconciles the desired state in the store every tick until it is told to stop
or has nothing left to do. See docs/ARCHITECTURE.md.
"""
