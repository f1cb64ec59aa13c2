"""Write hand-made *.dist-info directories so entry points can be tested without pip."""
import os
import sys
import textwrap


def make_dist(site, name, version, entry_points: dict, modules: dict):
    """entry_points: {group: {name: "module:attr"}}; modules: {filename: source}."""
    info = os.path.join(site, f"{name.replace('-', '_')}-{version}.dist-info")
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w") as f:
        f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    with open(os.path.join(info, "entry_points.txt"), "w") as f:
        for group, eps in entry_points.items():
            f.write(f"[{group}]\n")
            for k, v in eps.items():
                f.write(f"{k} = {v}\n")
    for fname, src in modules.items():
        with open(os.path.join(site, fname), "w") as f:
            f.write(textwrap.dedent(src))


class on_path:
    def __init__(self, site):
        self.site = str(site)

    def __enter__(self):
        sys.path.insert(0, self.site)
        import importlib

        importlib.invalidate_caches()
        from pyrt_core import entrypoints

        entrypoints.forget()
        return self

    def __exit__(self, *exc):
        sys.path.remove(self.site)
        from pyrt_core import entrypoints

        entrypoints.forget()
        for m in [m for m, mod in sys.modules.items()
                  if getattr(mod, "__file__", None) and str(mod.__file__).startswith(self.site)]:
            del sys.modules[m]
