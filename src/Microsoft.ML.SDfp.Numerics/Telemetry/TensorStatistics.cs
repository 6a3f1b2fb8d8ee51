using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;

namespace Microsoft.ML.SDfp.Numerics.Telemetry;

/// <summary>What one quantisation of one (layer, role) tensor did.</summary>
/// <param name="Layer">Layer name, e.g. "layer1.0.conv1".</param>
/// <param name="Role">Tensor role.</param>
/// <param name="Step">Training step (<see cref="QuantizationTelemetry.Step"/> at the time).</param>
/// <param name="Exponent">Effective exponent e − s: the integers stand for q · 2^Exponent.</param>
/// <param name="Shift">Shift s that was applied (the chosen one under auto shift).</param>
/// <param name="Amax">max |x| of this tensor (NaN/∞ when it held non-finite values).</param>
/// <param name="SaturatedFraction">Fraction of all elements outside the representable range [qmin, qmax] · 2^Exponent, which were clamped. NaN on steps without full statistics.</param>
/// <param name="FlushedToZeroFraction">Fraction of the non-zero elements that quantised to 0 (0 when there are none). NaN on steps without full statistics.</param>
/// <param name="SqnrDb">Signal-to-quantisation-noise ratio 10·log10(Σx² / Σ(x−x')²) in dB; +∞ when the quantisation is exact (error 0, including the all-zero tensor). NaN on steps without full statistics.</param>
/// <param name="NonFiniteCount">Number of NaN/±Inf elements (the quantiser then throws <see cref="NonFiniteTensorException"/>).</param>
public sealed record TensorStatistics(string Layer, TensorRole Role, long Step, int Exponent, int Shift,
    double Amax, double SaturatedFraction, double FlushedToZeroFraction, double SqnrDb, long NonFiniteCount)
{
    /// <summary>True when the fractions and SQNR were measured on this step (see <see cref="QuantizationTelemetry.SampleEvery"/>).</summary>
    public bool HasFullStatistics => !double.IsNaN(SaturatedFraction);
}
