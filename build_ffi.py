"""cffi builder for skbolt's C core.

``setup.py`` hands ``ffibuilder`` to cffi, which compiles ``csrc/*.c`` into
the extension module ``skbolt._bolt_cffi``. The declarations come from
``csrc/bolt_cdef.h``, the same file ``csrc/bolt.h`` includes, so the binding
and the library cannot drift apart.

OpenMP is used when the compiler accepts it; otherwise the core is built
single-threaded and a warning says so. No ``-march=native``: vector kernels
are cloned per ISA inside the C code where the toolchain supports it.

Run directly, ``python build_ffi.py`` builds the extension in place
(``skbolt/_bolt_cffi*.so``) for development after editing ``csrc/``;
``SKBOLT_CFLAGS="-fsanitize=address -g"`` makes a sanitizer build and
``SKBOLT_NO_OPENMP=1`` a single-threaded one. It compiles in a temporary
folder and copies the module into ``skbolt/``: cffi compiles through a
setuptools ``Distribution``, which reads the ``pyproject.toml`` of the
current folder, and the setuptools of a fresh virtual environment (65.5
with Python 3.11) rejects this project's PEP 639 ``license`` string, which
needs setuptools >= 77 (what ``pip install`` builds with, in isolation).
"""
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
import warnings
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"

_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
#pragma omp parallel reduction(+ : n) num_threads(2)
    n += omp_get_thread_num() + 1;
    return n > 0 ? 0 : 1;
}
"""


def _compiler():
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def _accepts(flags, source=_PROBE):
    """Whether the C compiler builds and links ``source`` with ``flags``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "probe.c"
        src.write_text(source)
        cmd = _compiler() + flags + [str(src), "-o", str(Path(tmp) / "probe")]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode == 0


def _flags():
    if sys.platform == "win32":
        return ["/O2", "/openmp"], []
    compile_args = ["-std=c11", "-O3", "-fno-math-errno"]
    link_args = []
    if os.environ.get("SKBOLT_NO_OPENMP"):
        openmp = False
    else:
        openmp = _accepts(["-fopenmp"])
    if openmp:
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    else:
        warnings.warn(
            "the C compiler does not accept -fopenmp: skbolt is built "
            "single-threaded (n_jobs has no effect). Install an OpenMP "
            "runtime (e.g. libgomp or libomp) and reinstall for parallel "
            "training.",
            stacklevel=1,
        )
        if _accepts(["-fopenmp-simd"], "int main(void) { return 0; }\n"):
            compile_args.append("-fopenmp-simd")
    # The hot loops' speed followed where the linker happened to place them:
    # issue 36's new objects moved simd_axpy from 32 to 0 modulo 64 bytes
    # and a dense-output fit (Corel5k, one thread) took 20-25% longer with
    # the same code; both builds aligned to 64 ran at the faster speed
    # (benchmarks/HISTORY.md, twentieth session).
    align = ["-falign-functions=64", "-falign-loops=64"]
    if _accepts(align, "int main(void) { return 0; }\n"):
        compile_args += align
    extra = os.environ.get("SKBOLT_CFLAGS")
    if extra:  # e.g. "-fsanitize=address -g" for a sanitizer build
        compile_args += shlex.split(extra)
        link_args += shlex.split(extra)
    return compile_args, link_args


ffibuilder = FFI()
ffibuilder.cdef((CSRC / "bolt_cdef.h").read_text() + (CSRC / "bolt_debug.h").read_text())
_compile_args, _link_args = _flags()
ffibuilder.set_source(
    "skbolt._bolt_cffi",
    '#include "bolt.h"\n#include "bolt_debug.h"\n',
    sources=sorted(str(p.relative_to(HERE)) for p in CSRC.glob("*.c")),
    include_dirs=[str(CSRC.relative_to(HERE))],
    extra_compile_args=_compile_args,
    extra_link_args=_link_args,
)

if __name__ == "__main__":
    import glob
    import shutil

    with tempfile.TemporaryDirectory(prefix="skbolt-build-") as tmp:
        # the sources are named relative to this folder: give the temporary
        # one a csrc/ of links to them (messages still name csrc/x.c), a real
        # folder so that the object files land there and not in csrc/
        os.mkdir(os.path.join(tmp, "csrc"))
        for src in CSRC.iterdir():
            if src.suffix in (".c", ".h"):
                link = os.path.join(tmp, "csrc", src.name)
                try:
                    os.symlink(src, link)
                except OSError:  # no symlinks (Windows without the privilege)
                    shutil.copy2(src, link)
        built = ffibuilder.compile(tmpdir=tmp, verbose=True)
        for old in glob.glob(str(HERE / "skbolt" / "_bolt_cffi*.so")) + glob.glob(
            str(HERE / "skbolt" / "_bolt_cffi*.pyd")
        ):
            os.remove(old)  # an older build with another suffix would shadow the new one
        target = HERE / "skbolt" / os.path.basename(built)
        shutil.copy2(built, target)
    print(f"built {target.relative_to(HERE)}")
