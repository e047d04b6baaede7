"""A simulated Rackspace cloud, for the demo and the tests.

One HTTP server speaks Identity v2.0 and v1.0, next-gen Cloud Servers v2, first-gen Cloud
Servers v1.0, the RackConnect v2.0 in-server API, the RackConnect v3.0 API and a control
API; see ``Simulator``.
"""

from exporter.simulator.core import Simulator
from exporter.simulator.faults import Fault
from exporter.simulator.scenario import Scenario, ServerSpec, SimAccount, SimAccountSpec

__all__ = ["Fault", "Scenario", "ServerSpec", "SimAccount", "SimAccountSpec", "Simulator"]
