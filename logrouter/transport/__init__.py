"""Sockets for the layers above: listeners that serve connections fairly and within deadlines
(``serving``), and the clients drains use to reach receivers (``httpclient``, ``tlsclient``)."""
