using Microsoft.ML.SDfp.Numerics.Formats;

namespace Microsoft.ML.SDfp.Numerics.Quantization;

/// <summary>
/// A tensor that was to be quantised holds NaN or ±Inf. Quantising would silently turn them into numbers
/// (NaN has no integer, Inf would saturate to qmax), hiding a diverged run, so the quantiser refuses.
/// </summary>
public sealed class NonFiniteTensorException : Exception
{
    /// <summary>Creates the exception for one (layer, role) stream.</summary>
    /// <param name="layer">Layer name, e.g. "layer1.0.conv1".</param>
    /// <param name="role">Role of the offending tensor.</param>
    /// <param name="nonFiniteCount">Number of NaN/Inf elements.</param>
    /// <param name="elementCount">Number of elements of the tensor.</param>
    /// <param name="step">Training step from the telemetry, when known.</param>
    public NonFiniteTensorException(string layer, TensorRole role, long nonFiniteCount, long elementCount, long? step = null)
        : base(BuildMessage(layer, role, nonFiniteCount, elementCount, step))
    {
        Layer = layer;
        Role = role;
        NonFiniteCount = nonFiniteCount;
        ElementCount = elementCount;
        Step = step;
    }

    /// <summary>Name of the layer whose tensor was not finite.</summary>
    public string Layer { get; }

    /// <summary>Role of the tensor that was not finite.</summary>
    public TensorRole Role { get; }

    /// <summary>Number of NaN/Inf elements.</summary>
    public long NonFiniteCount { get; }

    /// <summary>Number of elements in the tensor.</summary>
    public long ElementCount { get; }

    /// <summary>Training step at which it happened, if a telemetry sink supplied one.</summary>
    public long? Step { get; }

    private static string BuildMessage(string layer, TensorRole role, long count, long total, long? step) =>
        $"Layer '{layer}' role {role}: tensor contains {count} NaN/Inf values (of {total})" +
        (step is { } s ? $" at step {s}" : "") +
        ". Quantising would hide them; the run has diverged (lower the learning rate, check the input data, " +
        "or use a format with more headroom such as a negative shift).";
}
