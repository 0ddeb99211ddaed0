"""Discord-shaped code: payload types (``types``), a small REST client (``rest``), embeds and
buttons (``ui``), component custom ids (``custom_ids``) and the channel permission calculator
(``permissions``).

Nothing is imported here, so the interactions fast path can use the payload types without loading
the HTTP client (urllib.request and http.client cost tens of milliseconds at a cold start).
"""
