"""The one compiled part: runbook._scan, sshd lines matched by PCRE2's JIT (see its source).

PCRE2 comes from the ``pcre2`` wheel the build requires (pyproject.toml), which carries
pcre2.h and a static libpcre2-8 into the build environment: nothing from the system but a
C compiler. Without one the extension is skipped (optional) and runbook.logframe reads
with polars alone, slower, to the same result.
"""

from importlib.util import find_spec
from pathlib import Path

from setuptools import Extension, setup


def _pcre2() -> tuple[list[str], list[str]]:
    """The pcre2 wheel's header (in its package) and static library (among its data
    files, under the prefix it was installed to: pip's build environment)."""
    spec = find_spec("pcre2")
    if spec is None or spec.origin is None:
        return [], []
    package = Path(spec.origin).parent
    for prefix in package.parents:
        for lib in ("lib64", "lib"):
            static = prefix / lib / "libpcre2-8.a"
            if (package / "pcre2.h").is_file() and static.is_file():
                return [str(package)], [str(static)]
    return [], []


include, objects = _pcre2()
setup(
    ext_modules=[
        Extension(
            "runbook._scan",
            ["runbook/_scan.c"],
            include_dirs=include,
            extra_objects=objects,
            define_macros=[("PCRE2_STATIC", "1")],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
