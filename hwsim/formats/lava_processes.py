"""hwsim's own Lava processes (module level, where Lava's compiler looks for their process models).

Importing this module imports Lava (through the shim).
"""

from __future__ import annotations

import numpy as np

from hwsim.formats.lava_compat import import_lava

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402


class ErrorFeed(AbstractProcess):
    """Post-synaptic side of a three-factor rule: at step t sends y2[:, t-1] and y3[:, t-1] (7-bit error
    message halves), y1 = 0 and no back-propagating spikes; consumes the synaptic output it is connected to."""

    def __init__(self, *, y2: np.ndarray, y3: np.ndarray) -> None:
        super().__init__(y2=y2, y3=y3)
        n = y2.shape[0]
        self.a_in = InPort(shape=(n,))
        self.s_out_bap = OutPort(shape=(n,))
        self.s_out_y1 = OutPort(shape=(n,))
        self.s_out_y2 = OutPort(shape=(n,))
        self.s_out_y3 = OutPort(shape=(n,))
        self.y2 = Var(shape=y2.shape, init=y2)
        self.y3 = Var(shape=y3.shape, init=y3)


@implements(proc=ErrorFeed, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyErrorFeedModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out_bap: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, bool, precision=1)
    s_out_y1: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    s_out_y2: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    s_out_y3: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=7)
    y2: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=7)
    y3: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=7)

    def run_spk(self) -> None:
        self.a_in.recv()
        column = (self.time_step - 1) % self.y2.shape[1]
        n = self.y2.shape[0]
        self.s_out_bap.send(np.zeros(n, bool))
        self.s_out_y1.send(np.zeros(n, np.int32))
        self.s_out_y2.send(self.y2[:, column])
        self.s_out_y3.send(self.y3[:, column])
