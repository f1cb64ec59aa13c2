"""pyrt-network: the default network backend of pyrt ("bridge").

Linux bridges and veth pairs through netlink (pyroute2), NAT, isolation and published
ports through nftables (libnftables' JSON API) in pyrt's own table, and a persistent,
locked address allocator under ``<root>/networks/``.  See docs/networking.md,
"pyrt-network (bridge)".
"""
