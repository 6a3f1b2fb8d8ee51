namespace Microsoft.ML.SDfp.Distributed.Exchange;

/// <summary>How gradients travel between ranks in <see cref="GradientExchange"/>.</summary>
public enum GradientExchangeFormat
{
    /// <summary>FP32 values, summed by an FP32 all-reduce: 4 bytes per value.</summary>
    Fp32,

    /// <summary>
    /// S-DFP: each tensor becomes n-bit integers with one shared exponent, which the ranks agree on by an all-reduce
    /// MAX; the integers are summed in the narrowest integer type that holds the sum of all ranks.
    /// </summary>
    SDfp,
}
