namespace Microsoft.ML.SDfp.Numerics.Formats;

/// <summary>The part a tensor plays in a conv/linear GEMM; each role has its own number format.</summary>
public enum TensorRole
{
    /// <summary>The layer's weights (W), quantised from the FP32 master copy in every forward.</summary>
    Weight,

    /// <summary>The layer's input (A), quantised in forward and saved, quantised, for the weight gradient.</summary>
    Activation,

    /// <summary>The gradient flowing into the layer's output (G), quantised once and used for dgrad and wgrad.</summary>
    Error,

    /// <summary>The gradient of the weights (WG), optionally quantised before the optimizer sees it.</summary>
    WeightGradient,
}
