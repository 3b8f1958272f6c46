"""Other Python runtimes for the workers: a free-threaded CPython built here, and its venv."""
