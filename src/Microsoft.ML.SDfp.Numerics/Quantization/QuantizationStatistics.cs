namespace Microsoft.ML.SDfp.Numerics.Quantization;

/// <summary>Raw counts and energies of one quantisation, gathered in the same pass that quantises.</summary>
/// <param name="Count">Number of elements.</param>
/// <param name="NonZero">Number of non-zero inputs.</param>
/// <param name="Saturated">Inputs outside [qmin, qmax] · 2^e, which the clamp moved.</param>
/// <param name="Flushed">Non-zero inputs whose integer is 0.</param>
/// <param name="SignalEnergy">Σ x².</param>
/// <param name="ErrorEnergy">Σ (x − x')².</param>
internal readonly record struct QuantizationStatistics(
    long Count, long NonZero, long Saturated, long Flushed, double SignalEnergy, double ErrorEnergy)
{
    public double SaturatedFraction => Count == 0 ? 0 : (double)Saturated / Count;

    public double FlushedToZeroFraction => NonZero == 0 ? 0 : (double)Flushed / NonZero;

    /// <summary>10·log10(Σx²/Σ(x−x')²); +∞ when the quantisation is exact (including the all-zero tensor).</summary>
    public double SqnrDb => ErrorEnergy == 0 ? double.PositiveInfinity : 10 * Math.Log10(SignalEnergy / ErrorEnergy);

    public static QuantizationStatistics operator +(QuantizationStatistics a, QuantizationStatistics b) =>
        new(a.Count + b.Count, a.NonZero + b.NonZero, a.Saturated + b.Saturated, a.Flushed + b.Flushed,
            a.SignalEnergy + b.SignalEnergy, a.ErrorEnergy + b.ErrorEnergy);
}
