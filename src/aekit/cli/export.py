"""``aekit export``: a run's encoder, decoder and autoencoder as ONNX graphs."""

from __future__ import annotations

from ._common import FORMATTER, device_arg

EXAMPLE = """example:
  aekit export runs/mnist --format onnx --out model.onnx
      # model.onnx (x -> x_hat), model.encoder.onnx (x -> z), model.decoder.onnx (z -> x_hat),
      # each taking and giving data in its own units (the run's scaler is in the graph)
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="write a run's model as ONNX graphs (encoder, decoder, autoencoder)",
        epilog=EXAMPLE,
        formatter_class=FORMATTER,
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="(default: onnx)")
    p.add_argument("--out", required=True, help="the autoencoder's file, ending .onnx")
    device_arg(p)  # checked like every command's; ONNX graphs are traced on the CPU (see run)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import ConfigError
    from ..io import checkpoint as ckpt
    from ..io.export import export_onnx, part_paths
    from ..training.devices import resolve_device

    part_paths(args.out)  # a bad name is refused before the run is read
    resolve_device(args.device)  # an unavailable device is refused as by every command
    # the graphs do not depend on the device they were traced on: export_onnx traces on the CPU
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise ConfigError("ONNX export needs the onnx package: pip install aekit[export]") from None
    model = ckpt.load(args.run)
    record = {**ckpt.model_record(model), "scaler": ckpt.read_config(args.run).get("scaler")}
    for part, path in export_onnx(model, args.out, record).items():
        print(f"wrote {part} to {path}")
    return 0
