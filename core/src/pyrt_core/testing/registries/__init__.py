"""The parts of :mod:`pyrt_core.testing.registry` (the entry point tests import,
which holds the ``docker-registry`` process and the fixtures): in-thread servers and
ports (:mod:`.servers`), certificates, htpasswd and the token server (:mod:`.auth`),
the fault-injecting proxy (:mod:`.faultproxy`), the scripted recording server
(:mod:`.recording`) and the test images pushed into registries (:mod:`.images`).
"""
