#!/usr/bin/env python3
"""The numbers of a gpu-run.sh output folder side by side: bench-device per shape (with the SDPA and the
manual attention path), transformers' plain decoding as a ratio, bench on the shipped model, test totals.
Reads whatever files are there; prints plain text."""
import json
import os
import re
import sys


def load(folder, name):
    try:
        with open(os.path.join(folder, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def by_shape(report):
    return {s["shape"]: s for s in report["shapes"]} if report else {}


def shape_lines(s, manual, peer):
    d = s["decode"]
    verify = {v["nodes"]: v["ratio"] for v in s["verify"]}
    draft = {x["width"]: x["ratio"] for x in s["draft"]}
    lines = [f"{s['shape']}: plain decode {d['tokens_per_s']:.1f} tok/s = {100 * d['fraction_of_limit']:.1f}% of the "
             f"bandwidth limit {d['limit_tokens_per_s']:.1f} tok/s",
             f"  verify 26 / 60: {verify[26]:.2f}x / {verify[60]:.2f}x a one-token step; draft 1 / 10 wide: "
             f"{100 * draft[1]:.1f}% / {100 * draft[10]:.1f}% of a target step"]
    if manual:
        mv = {v["nodes"]: v["ratio"] for v in manual["verify"]}
        lines.append(f"  manual attention (ET_SDPA=0): {manual['decode']['tokens_per_s']:.1f} tok/s, verify 26 / 60: "
                     f"{mv[26]:.2f}x / {mv[60]:.2f}x")
    e = s["derived"]
    lines.append(f"  EAGLE-2 speedup {e['speedup']:.2f}x (derived: {e['formula']}; tau {e['tau']}, {e['tau_source']})")
    for t in s["targets"]:
        lines.append(f"  {'pass' if t['pass'] else 'FAIL'}  {t['name']} = {t['value']:.3f} (target {t['op']} {t['target']})")
    if peer:
        ratio = d["tokens_per_s"] / peer["decode_tokens_per_s"]
        lines.append(f"  transformers generate {peer['decode_tokens_per_s']:.1f} tok/s: eagle plain decoding is {ratio:.2f}x it")
    return lines


def main(folder):
    device, manual, peer = load(folder, "bench-device.json"), load(folder, "bench-device-manual.json"), load(folder, "peer-hf.json")
    lines = ["", "---- numbers"]
    if device:
        lines.append(f"copy bandwidth {device['copy_bandwidth_bytes_per_s'] / 1e9:.0f} GB/s (read + write), "
                     f"{device['device']} {device['dtype']}, libtorch {device['torch']}, context {device['workload']['context']}")
        manual_shapes, peer_shapes = by_shape(manual), by_shape(peer)
        for name, s in by_shape(device).items():
            lines += shape_lines(s, manual_shapes.get(name), peer_shapes.get(name))
    if peer:
        lines.append(f"peer: {peer['peer']}, transformers {peer['transformers']}, torch {peer['torch']}")
    for bench in (load(folder, "bench.json") or {}).values():  # {"f32": report, "bf16": report}
        if not bench:
            continue
        lines.append(f"bench {bench['model']} ({bench['device']} {bench['dtype']}):")
        for m in bench["methods"]:
            lines.append(f"  {m['name']}: {m['tokens_per_s']:.1f} tok/s, {m['speedup']:.2f}x, tau {m['mean_acceptance_length']:.2f}")
        lines.append(f"  greedy outputs identical: {bench['identical_outputs']}")
        for d in bench.get("divergences", []):
            lines.append(f"  {d['method']} prompt {d['prompt']}: first differs at token {d['at']}, gap {d['gap']:.4f} nats, "
                         f"near tie {d['near_tie']}")
    try:
        with open(os.path.join(folder, "tests.log")) as f:
            totals = re.findall(r"^ *(\d+) (pass|fail)$", f.read(), re.M)
        lines.append("tests: " + ", ".join(f"{n} {what}" for n, what in totals[-2:]))
    except OSError:
        pass
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
