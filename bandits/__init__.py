"""Online learning of solver parameters: bandits over omega grids and solver configurations.

Learners (common interface ``select(context)``, ``update(arm, loss, context)``,
``state_dict()``/``load_state_dict()``): ``TsallisINF``, ``Exp3``, ``ChebCB``,
``BinnedTsallisINF``, ``ClusteredIGW``, ``ThompsonSampling``. Tuners used by ``krylearn.solve(...,
tuner=t)``: ``OmegaTuner`` (omega of SOR / SSOR / SSOR-PCG) and
``SolverTuner`` (method x preconditioner x omega). ``save_state`` /
``load_state`` persist any of them as JSON.
"""
from .base import Learner, load_state, save_state
from .binned import BinnedTsallisINF
from .chebcb import ChebCB
from .clustered import ClusteredIGW
from .exp3 import Exp3
from .features import FEATURE_NAMES, matrix_features
from .omega_tuner import DEFAULT_OMEGAS, OmegaTuner
from .solver_tuner import DEFAULT_CONFIGURATIONS, Configuration, SolverTuner
from .thompson import ThompsonSampling
from .tsallis import TsallisINF

__all__ = [
    "BinnedTsallisINF", "ChebCB", "ClusteredIGW", "Configuration", "DEFAULT_CONFIGURATIONS", "DEFAULT_OMEGAS",
    "Exp3", "FEATURE_NAMES", "Learner", "OmegaTuner", "SolverTuner", "ThompsonSampling", "TsallisINF", "load_state",
    "matrix_features", "save_state",
]
