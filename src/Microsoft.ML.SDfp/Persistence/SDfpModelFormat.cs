using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Training.Models;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// The quantisation policy between its TorchSharp-side types and the scoring package's stored form (which reads and
/// writes the whole model file without TorchSharp).
/// </summary>
internal static class SDfpModelFormat
{
    public static StoredPolicy ToStored(QuantizationPolicy policy) => new(policy.QuantizeFirstConv, policy.QuantizeLastLinear, policy.Layers.Seed,
        ToStored(policy.Layers.Weight), ToStored(policy.Layers.Activation), ToStored(policy.Layers.Error), ToStored(policy.Layers.WeightGradient));

    public static QuantizationPolicy FromStored(StoredPolicy stored)
    {
        var config = new QuantizationConfig
        {
            Seed = stored.Seed,
            Weight = FromStored(stored.Weight),
            Activation = FromStored(stored.Activation),
            Error = FromStored(stored.Error),
            WeightGradient = FromStored(stored.WeightGradient),
        };
        var policy = new QuantizationPolicy { Layers = config, QuantizeFirstConv = stored.QuantizeFirstConv, QuantizeLastLinear = stored.QuantizeLastLinear };
        try
        {
            policy.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"The stored quantisation policy is invalid ({ex.Message}); the model file is corrupt.", ex);
        }

        return policy;
    }

    private static StoredFormat? ToStored(DfpFormat? format) => format is null ? null : new StoredFormat(format.Bits, format.Shift, (int)format.Rounding,
        (int)format.ExponentSource, format.HistoryLength, format.AutoShift, format.AutoShiftMin, format.AutoShiftMax, format.MaxSaturatedFraction);

    private static DfpFormat? FromStored(StoredFormat? stored) => stored is null ? null : new DfpFormat
    {
        Bits = stored.Bits,
        Shift = stored.Shift,
        Rounding = (RoundingMode)stored.Rounding,
        ExponentSource = (ExponentSource)stored.ExponentSource,
        HistoryLength = stored.HistoryLength,
        AutoShift = stored.AutoShift,
        AutoShiftMin = stored.AutoShiftMin,
        AutoShiftMax = stored.AutoShiftMax,
        MaxSaturatedFraction = stored.MaxSaturatedFraction,
    };
}
