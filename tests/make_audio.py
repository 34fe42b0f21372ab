"""make_audio.py OUT.onnx [WINDOW] [HOP] [CHANNELS] - an audio front end for the
profiling tests (tests/test_serve_models.sh): audio[1,N] (N dynamic) -> Reshape
to [1,1,N] -> Conv (CHANNELS filters of WINDOW samples, stride HOP, no padding)
-> ReduceMean over time -> y[1,CHANNELS]. It needs N >= WINDOW (default 400,
hop 160: 25 ms windows at 16 kHz, as speech front ends use), so zeros or
N = 1 cannot profile it. Weights are fixed (seed 11) and of normal
magnitude: no subnormal floats. The test imports weights() from this file
to compute the expected output with numpy. Run with /usr/bin/python3 (Debian's python3-onnx)."""
import sys

import numpy as np


def weights(window, channels):
    rng = np.random.default_rng(11)
    w = (rng.standard_normal((channels, 1, window)) / np.sqrt(window)).astype(np.float32)
    b = (rng.standard_normal(channels) / 10).astype(np.float32)
    return w, b


def main():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = sys.argv[1]
    window = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    hop = int(sys.argv[3]) if len(sys.argv) > 3 else 160
    channels = int(sys.argv[4]) if len(sys.argv) > 4 else 8
    w, b = weights(window, channels)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array([1, 1, -1], dtype=np.int64), "shape3")]
    nodes = [helper.make_node("Reshape", ["audio", "shape3"], ["a3"]),
             helper.make_node("Conv", ["a3", "w", "b"], ["frames"], kernel_shape=[window],
                              strides=[hop]),
             helper.make_node("ReduceMean", ["frames"], ["y"], axes=[2], keepdims=0)]
    g = helper.make_graph(nodes, "audio_frontend",
                          [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, "N"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="usher-tests")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, out)


if __name__ == "__main__":
    main()
