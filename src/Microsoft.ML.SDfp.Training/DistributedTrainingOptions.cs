using Microsoft.ML.SDfp.Distributed.Exchange;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// Data-parallel training across the processes of an Open MPI job (<c>mpirun -np P</c>); see
/// <see cref="TrainingOptions.Distributed"/>. Every default is the value shown on its property.
/// </summary>
public sealed record DistributedTrainingOptions
{
    /// <summary>How gradients travel between ranks every step. Default <see cref="GradientExchangeFormat.Fp32"/>.</summary>
    public GradientExchangeFormat GradientExchange { get; init; } = GradientExchangeFormat.Fp32;

    /// <summary>Bit width n of the S-DFP gradient exchange, 2..24. Default 8. Only with <see cref="GradientExchangeFormat.SDfp"/>.</summary>
    public int GradientExchangeBits { get; init; } = 8;

    /// <summary>Shift s of the S-DFP gradient exchange (exponent e - s), -8..8. Default 0. Only with <see cref="GradientExchangeFormat.SDfp"/>.</summary>
    public int GradientExchangeShift { get; init; } = 0;

    internal void Validate()
    {
        if (!Enum.IsDefined(GradientExchange))
            throw new ArgumentOutOfRangeException(nameof(GradientExchange), GradientExchange, $"TrainingOptions.Distributed.GradientExchange is not a GradientExchangeFormat value; got {GradientExchange}.");
        if (GradientExchangeBits is < 2 or > 24)
            throw new ArgumentOutOfRangeException(nameof(GradientExchangeBits), GradientExchangeBits, $"TrainingOptions.Distributed.GradientExchangeBits must be in 2..24; got {GradientExchangeBits}.");
        if (GradientExchangeShift is < -8 or > 8)
            throw new ArgumentOutOfRangeException(nameof(GradientExchangeShift), GradientExchangeShift, $"TrainingOptions.Distributed.GradientExchangeShift must be in -8..8; got {GradientExchangeShift}.");
    }
}
