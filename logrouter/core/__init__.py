"""The router's core, with no I/O of its own: channels and the token → channel table
(``channels``), routing frames by token (``token_routing``), history (``history``), live tails
(``tail``), sessions (``sessions``) and the bounded drop-oldest buffer (``buffer``)."""
