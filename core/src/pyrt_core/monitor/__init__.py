"""Container monitors: the process that outlives the CLI for a detached container.

pyrt uses conmon (:mod:`.conmon`): it holds the container's stdio, writes the
log, reaps the init, writes the exit code and runs ``pyrt container cleanup``
when the container exits.  :mod:`.attach` talks to it; :mod:`.logs` reads
what it wrote.  See docs/lifecycle.md for why conmon and not a Python monitor.
"""
