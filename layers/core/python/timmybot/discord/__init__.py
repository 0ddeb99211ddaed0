"""Talking to Discord over HTTP: payload types (``types``) and a small REST client (``rest``).

Nothing is imported here, so the interactions fast path can use the payload types without loading
the HTTP client (urllib.request and http.client cost tens of milliseconds at a cold start).
"""
