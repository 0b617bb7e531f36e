"""Dense tensor-core peaks (TFLOP/s) of the cards difftui knows, by precision: the denominator of MFU (the training
loop's `mfu` metric) and of the doctor's throughput rule. No torch here, so the doctor can read it.
"""

from __future__ import annotations

__all__ = ["PEAK_TFLOPS", "peak_tflops"]

# Dense tensor-core peaks (TFLOP/s) by card and precision, for MFU; a card not listed gets no MFU.
PEAK_TFLOPS = {
    "H200": {"bf16": 989.0, "fp16": 989.0, "tf32": 494.5, "fp32": 66.9},
    "H100 80GB HBM3": {"bf16": 989.0, "fp16": 989.0, "tf32": 494.5, "fp32": 66.9},      # SXM
    "H100 PCIe": {"bf16": 756.0, "fp16": 756.0, "tf32": 378.0, "fp32": 51.2},
    "H100 NVL": {"bf16": 835.0, "fp16": 835.0, "tf32": 417.5, "fp32": 60.0},
    "A100": {"bf16": 312.0, "fp16": 312.0, "tf32": 156.0, "fp32": 19.5},
    "L40S": {"bf16": 362.0, "fp16": 362.0, "tf32": 183.0, "fp32": 91.6},
    "RTX 4090": {"bf16": 165.2, "fp16": 165.2, "tf32": 82.6, "fp32": 82.6},
}


def peak_tflops(device_name: str, precision: str, tf32: bool) -> float | None:
    key = precision if precision in ("bf16", "fp16") else ("tf32" if tf32 else "fp32")
    for card, peaks in PEAK_TFLOPS.items():
        if card in device_name:
            return peaks[key]
    return None
