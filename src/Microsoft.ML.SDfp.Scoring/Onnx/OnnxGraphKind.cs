namespace Microsoft.ML.SDfp.Onnx;

/// <summary>Which arithmetic the ONNX graph of a trained network uses.</summary>
internal enum OnnxGraphKind
{
    /// <summary>
    /// The training-time scoring arithmetic: quantised layers as QuantizeLinear and integer GEMMs with exact int32
    /// sums, batch norm rounded as libtorch rounds it. Scores match TorchSharp scoring.
    /// </summary>
    Exact,

    /// <summary>
    /// The same network in FP32: quantised weights as their float grid values, no activation quantisation, plain
    /// BatchNormalization (which ONNX Runtime fuses into the convolutions). Only to compare speed.
    /// </summary>
    Float,
}
