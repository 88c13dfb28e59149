"""funnel_lab: from a CRM export to a decision — stage design, funnel, regression, A/B tests and targeting."""

__version__ = "0.1.0"

from .config import ParamsError, load_params  # noqa: E402
from .session import RunContext, open_run  # noqa: E402

__all__ = ["ParamsError", "RunContext", "__version__", "load_params", "open_run"]
