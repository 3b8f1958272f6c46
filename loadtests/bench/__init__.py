"""``make bench``: the pipeline's own cost against a bare aio-pika relay, and its memory."""
