"""How well the projection model predicts published figures it was not fitted on.

    python benchmarks/projection_check.py [--write]

Counts the work of every published figure's setup on the meta device (hardware/published.py),
fits the step model (analysis/calibration.py), then refits without each figure in turn and
prints that leave-one-out projection beside the published value. `--write` stores the fit in
diffbench/hardware/calibration.json, the calibration `estimate` and `recommend` use.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from diffbench.analysis.calibration import SHIPPED, calibrate
from diffbench.hardware.published import PUBLISHED, calibrating_cards


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"store the fit as diffbench/hardware/{SHIPPED}")
    args = parser.parse_args()
    calibration = calibrate()
    p = calibration.parameters
    print("Hopper efficiencies: " + ", ".join(f"{k} {v:.2f}" for k, v in p.compute_efficiency.items())
          + f", bandwidth {p.bandwidth_efficiency:.2f}; kernel floor {1e6 * p.kernel_floor_s:.1f} µs; "
          f"overlap q {p.overlap:.2f}")
    print(f"host per launch: measuring host {1e6 * p.measured_host_s:.1f} µs, typical published host "
          f"{1e6 * p.typical_host_s:.1f} µs")
    print("architecture factors (Hopper 1), from the cards: " + "; ".join(
        f"{k} {v:.2f} ({', '.join(calibrating_cards(k))})" for k, v in p.architecture_factor.items()))
    print(f"\n{'published figure':<48} {'unit':>8} {'published':>10} {'leave-one-out':>14} {'ratio':>6}")
    for figure, (label, published, predicted) in zip(PUBLISHED, calibration.leave_one_out):
        shown = (lambda s: f"{1 / s:.2f}") if figure.unit == "it/s" else (lambda s: f"{s:.2f}")
        aside = f"  (not fitted: {figure.excluded})" if figure.excluded else ""
        print(f"{label:<48} {figure.unit:>8} {shown(published):>10} {shown(predicted):>14} "
              f"{predicted / published:>6.2f}{aside}")
    ratios = [p / s for (_, s, p), f in zip(calibration.leave_one_out, PUBLISHED) if not f.excluded]
    print(f"\nseconds ratio predicted/published: min {min(ratios):.2f}, max {max(ratios):.2f}; "
          f"log RMS {calibration.log_error:.3f} (95% interval x/÷ {calibration.spread('figure'):.2f})")
    print("\nheld-out errors (each figure predicted by a fit that never saw what it shares with it):")
    print(f"  one figure: log RMS {calibration.log_error:.3f}, 95% interval x/÷ {calibration.spread('figure'):.2f}")
    for kind, error in calibration.held_out.items():
        print(f"  its {kind:<6}: log RMS {error:.3f}, 95% interval x/÷ {calibration.spread(kind):.2f}")
    _coverage(calibration)
    if args.write:
        target = Path(__file__).resolve().parents[1] / "diffbench" / "hardware" / SHIPPED
        target.write_text(json.dumps(calibration.to_json(), indent=1) + "\n")
        print(f"written: {target}")


def _coverage(calibration) -> None:  # type: ignore[no-untyped-def]
    """How often the printed intervals hold the published figure, with its card held out: the
    interval a card without published figures gets (x/÷ the held-out card error)."""
    from diffbench.analysis.calibration import (
        HELD_OUT_KINDS,
        HOPPER,
        ModelParameters,
        _fit_hopper_kernels,
        _fit_measured_host,
        _t975,
        held_out_error,
        workload_counts,
    )

    hopper_counts = {m.model: workload_counts(m.model, m.resolution, 1, m.dtype, False) for m in HOPPER}
    efficiency, bandwidth, floor = _fit_hopper_kernels(HOPPER, hopper_counts)
    kernels = ModelParameters(efficiency, bandwidth, floor, 2.0)
    host, overlap = _fit_measured_host(HOPPER, hopper_counts, kernels)
    base = ModelParameters(efficiency, bandwidth, floor, overlap, {}, host)
    fitted = [f for f in PUBLISHED if not f.excluded]

    def counts(figure):  # type: ignore[no-untyped-def]
        return workload_counts(figure.model, figure.resolution, figure.batch_size, figure.dtype, figure.channels_last)

    _, predictions = held_out_error(fitted, counts, base, HELD_OUT_KINDS["card"])
    spread = calibration.spread("card")
    inside = sum(1 for f, p in predictions if p / spread <= f.seconds <= p * spread)
    scored = {f for f, _ in predictions}
    refused = sorted({f.gpu for f in fitted if f not in scored})
    print(f"  coverage of x/÷ {spread:.2f} with the card held out: {inside} of {len(predictions)} figures "
          f"({100 * inside / len(predictions):.0f}%)")
    # The same check with nothing of the scored card in the width either: each card's interval is
    # x/÷ exp(t x the RMS of the other cards' held-out log ratios), t as the calibration takes it.
    widths, nested = [], 0
    for figure, predicted in predictions:
        others = [math.log(p / f.seconds) for f, p in predictions if f.gpu != figure.gpu]
        groups = len({f.gpu for f, _ in predictions if f.gpu != figure.gpu})
        width = math.exp(_t975(groups - 1) * math.sqrt(sum(x * x for x in others) / len(others)))
        widths.append(width)
        nested += predicted / width <= figure.seconds <= predicted * width
    print(f"  the same with each card's width from the other cards only: {nested} of {len(predictions)} "
          f"({100 * nested / len(predictions):.0f}%), median width x/÷ {statistics.median(widths):.2f}")
    print(f"  refused with their card held out (the only calibrated card of their architecture): {', '.join(refused)}")

if __name__ == "__main__":
    main()
