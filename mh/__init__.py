"""mambahash-companion: the MambaHash model, its selective scan, losses and hashing tools.

Importing ``mh`` needs only PyTorch: mamba-ssm (and triton) load on first use of the CUDA scan.
"""

from mh.codes import retrieve
from mh.model import MambaHash, load_groupmamba_weights
from mh.scan import selective_scan

__all__ = ["MambaHash", "load_groupmamba_weights", "retrieve", "selective_scan"]
__version__ = "0.1.0"
