"""Observability: structured logs with request ids, and Prometheus metrics.

``logs`` configures logging for every Calgate process (JSON lines, scrubbed of secrets);
``metrics`` holds the counters each process keeps; ``state`` reads what lives in the
database at scrape time; ``exposition`` assembles and serves them; ``middleware`` is the
HTTP edge (request id, latency histogram, access log line).
"""
