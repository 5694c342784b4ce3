"""Reproduce TrueNorth's published all-in energy per synaptic event from its inputs.

Published (Merolla et al., Science 345(6197), 2014): 26 pJ per synaptic event all-in, 72 mW,
0.775 V, with 2**20 neurons firing at 20 Hz mean rate. 72 mW / 26 pJ = 2.77e9 events/s, i.e. about 128
active synapses per spike (2**20 x 20 Hz x 128 = 2.68e9 events/s).

Here one TrueNorth core's worth of that activity runs in hwsim: 256 neurons spiking at 20 Hz (rate 0.02
per 1 ms tick) onto 128 synapses each (a 256-128 layer), for T ticks. The cost model prices it with the
``truenorth_marginal`` profile (2.3 pJ per event + 42 mW static, a third party's split); the dynamic energy
is scaled to the chip's 4096 cores, the static power is the chip's. Then the energy per synaptic event and
the chip power are compared with the published all-in figures. Finally the all-in ``truenorth`` profile is
used on that single core, far from its operating point: the estimate warns and floors at static x time.

    python benchmarks/reproduce_truenorth.py [--ticks 1000]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwsim import chips  # noqa: E402
from hwsim.hardware.cost import estimate  # noqa: E402
from hwsim.sim.engine import Engine, bernoulli  # noqa: E402
from hwsim.sim.network import from_spec  # noqa: E402

PUBLISHED_PJ, PUBLISHED_MW, CORES = 26.0, 72.0, 4096


def truenorth_check(ticks: int = 1000, seed: int = 0) -> dict:
    network = from_spec("256-128", mode="fixed", seed=seed)
    counts = Engine(network).run(bernoulli((ticks, 1, 256), 0.02, seed=seed + 1)).counts
    chip = chips.load("truenorth_marginal")
    report = estimate(network, counts, chip)
    seconds = report.latency_s
    dynamic_per_core = report.energy_dynamic_j
    sops_chip = counts.total("sop") * CORES
    all_in = estimate(network, counts, chips.load("truenorth"))
    energy_chip = dynamic_per_core * CORES + chip.static.static_power_mw * 1e-3 * seconds
    return {"ticks": ticks, "seconds": seconds, "events_per_s": sops_chip / seconds,
            "pj_per_event": energy_chip / sops_chip * 1e12, "power_mw": energy_chip / seconds * 1e3,
            "published_pj_per_event": PUBLISHED_PJ, "published_power_mw": PUBLISHED_MW,
            "all_in_profile_pj": all_in.energy_all_in_j / counts.total("sop") * 1e12,
            "all_in_one_core_pj": all_in.energy_j / counts.total("sop") * 1e12, "all_in_warnings": all_in.warnings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1000, help="1 ms ticks to simulate (default 1000 = 1 s)")
    args = parser.parse_args()
    r = truenorth_check(args.ticks)
    off = (r["pj_per_event"] - PUBLISHED_PJ) / PUBLISHED_PJ * 100
    print(f"activity: {r['events_per_s']:.3g} synaptic events/s on 4096 cores (published implies 2.68e9-2.77e9)")
    print(f"reproduced from 2.3 pJ/event + 42 mW static: {r['pj_per_event']:.1f} pJ/event, {r['power_mw']:.1f} mW")
    print(f"published all-in: {PUBLISHED_PJ} pJ/event, {PUBLISHED_MW} mW  ->  {off:+.0f} % off")
    print(f"the all-in profile (truenorth) gives {r['all_in_profile_pj']:.1f} pJ/event by construction")
    print(f"used on this one core it floors at static x time: {r['all_in_one_core_pj']:.4g} pJ/event")
    for warning in r["all_in_warnings"]:
        print(f"  warning: {warning}")


if __name__ == "__main__":
    main()
