"""Lead scraper for public business directories: a polite crawler (crawler.py), pure HTML extraction
(extract.py) and a local static file server for tests and the demo (static_server.py)."""
