"""The soak: a long steady load that shows whether state and memory stay bounded."""
