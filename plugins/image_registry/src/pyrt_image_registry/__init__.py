"""pyrt plugin: image distribution through Docker/OCI registries.

* :mod:`.plugin` - the hook implementations (``pyrt_image_fetch`` for
  registry references, ``pyrt_image_push``);
* :mod:`.client` - the HTTP client: ``/v2/`` probe, Basic and Bearer auth,
  retries with back-off, redirects, TLS with custom CAs, insecure registries;
* :mod:`.pull` - manifests, platform selection, concurrent resumable blob
  downloads verified while streaming, layers unpacked as they arrive;
* :mod:`.push` - blob HEAD/mount/upload (monolithic or chunked), manifest last;
* :mod:`.authfile` - ``auth.json`` / ``~/.docker/config.json`` credentials;
* :mod:`.progress` - per-layer progress bars, plain lines or nothing.

Only the standard library is used (``http.client``, ``ssl``, threads), so
``pyrt`` starts as fast with this plugin as without it.
"""
