"""pyrt-network-cni: container networks from CNI configurations (docs/networking.md)."""
