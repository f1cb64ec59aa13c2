"""Health checks (docker's ``HEALTHCHECK`` and ``--health-*`` flags) without a daemon.

* :mod:`.config`: docker's durations, the flags, the image's ``Healthcheck`` and the
  merge of the two (done once, at create: the record holds the effective check);
* :mod:`.state`: ``State.Health`` (status, failing streak, the last five results) in
  ``<root>/containers/<id>/health.json``, written atomically;
* :mod:`.runner`: the per-container runner, a lean Python process started with the
  container and stopped by its cleanup (pyrt_core.engine.healthrunner); each check is ``pyrt
  healthcheck run`` (pyrt_core.engine.healthcheck), an exec into the container through
  the engine's exec path (docs/lifecycle.md, "Health checks").

Keep these modules free of heavy imports: ``ps`` reads the state through :mod:`.state`.
"""
