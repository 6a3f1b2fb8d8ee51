namespace Microsoft.ML.SDfp.Numerics.Formats;

/// <summary>How a scaled value becomes an integer.</summary>
public enum RoundingMode
{
    /// <summary>Round half to even (IEEE default, the same rule as <c>torch.round</c>): unbiased on ties, deterministic.</summary>
    NearestEven,

    /// <summary>
    /// Round up with probability equal to the fractional part, so the expected value equals the input.
    /// Seeded and reproducible: the same seed gives the same integers.
    /// </summary>
    Stochastic,
}
