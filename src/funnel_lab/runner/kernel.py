"""The Jupyter kernel the notebooks run in: ``funnel-lab``, registered for this interpreter on first use."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ParamsError

#: The kernel the notebooks name (``make`` registers it too: ``ipykernel install --sys-prefix --name funnel-lab``).
KERNEL_NAME = "funnel-lab"
DISPLAY_NAME = "Python (funnel_lab)"


@dataclass
class Kernel:
    """Which kernel a run uses: its ``python``, where its spec is, and whether this run registered it."""

    name: str
    python: str | None  # None: not registered yet
    spec_dir: str | None
    registered_now: bool = False

    @property
    def other_interpreter(self) -> bool:
        """The kernel runs another Python than this command (another environment's funnel_lab, perhaps)."""
        return self.python is not None and Path(self.python).resolve() != Path(sys.executable).resolve()

    def describe(self) -> str:
        """One line for ``funnel-lab check`` and the run's progress."""
        if self.python is None:
            return (f"kernel {self.name}: not registered; the run registers it for {sys.executable} "
                    f"({_scope()} scope)")
        line = f"kernel {self.name}: {self.python} ({self.spec_dir})"
        if self.registered_now:
            line += f"; registered now for this interpreter ({_scope()} scope)"
        if self.other_interpreter:
            line += f"; not this interpreter ({sys.executable}): the notebooks run with that one's funnel_lab"
        return line


def _in_venv() -> bool:
    return sys.prefix != sys.base_prefix


def _scope() -> str:
    return "sys-prefix" if _in_venv() else "user"


def find_kernel() -> Kernel:
    """The ``funnel-lab`` kernel as Jupyter would find it."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return Kernel(KERNEL_NAME, None, None)
    return Kernel(KERNEL_NAME, spec.argv[0] if spec.argv else None, spec.resource_dir)


def ensure_kernel() -> Kernel:
    """The ``funnel-lab`` kernel, registered for this interpreter when missing: in this virtual environment
    (sys-prefix scope), else for this user.

    Raises
    ------
    ParamsError
        The kernel cannot be registered (e.g. a read-only environment); the message gives the command to run.
    """
    found = find_kernel()
    if found.python is not None:
        return found
    from ipykernel.kernelspec import install

    try:
        where = install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, user=not _in_venv(),
                        prefix=sys.prefix if _in_venv() else None)
    except OSError as e:
        raise ParamsError(f"Jupyter kernel {KERNEL_NAME!r} is not installed and cannot be registered ({e}); run "
                          f"`{sys.executable} -m ipykernel install --user --name {KERNEL_NAME}`") from None
    return Kernel(KERNEL_NAME, sys.executable, where, registered_now=True)
