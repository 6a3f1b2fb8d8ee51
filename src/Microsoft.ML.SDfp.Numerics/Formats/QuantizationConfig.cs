namespace Microsoft.ML.SDfp.Numerics.Formats;

/// <summary>
/// Which roles of a conv/linear layer are quantised, and how. A null role stays FP32 (the tensor passes through
/// unchanged), so <see cref="Fp32"/> is the unquantised baseline run through the very same layer code.
/// </summary>
public sealed record QuantizationConfig
{
    /// <summary>Format of the weights (W), or null for FP32.</summary>
    public DfpFormat? Weight { get; init; }

    /// <summary>Format of the layer input (A), or null for FP32.</summary>
    public DfpFormat? Activation { get; init; }

    /// <summary>Format of the error G (gradient of the layer output), or null for FP32.</summary>
    public DfpFormat? Error { get; init; }

    /// <summary>Format of the weight gradient (WG), or null (the default) to hand the optimizer FP32 gradients.</summary>
    public DfpFormat? WeightGradient { get; init; }

    /// <summary>
    /// Base seed of stochastic rounding. Each (layer, role) stream derives its own seed from it and its name, so runs
    /// with the same seed round identically. Default 0.
    /// </summary>
    public long Seed { get; init; }

    /// <summary>No role quantised.</summary>
    public static QuantizationConfig Fp32 { get; } = new();

    /// <summary>W, A and G in <paramref name="format"/>; weight gradients stay FP32.</summary>
    /// <param name="format">The format of all three GEMM operand roles.</param>
    public static QuantizationConfig Uniform(DfpFormat format)
    {
        ArgumentNullException.ThrowIfNull(format);
        format.Validate();
        return new QuantizationConfig { Weight = format, Activation = format, Error = format };
    }

    /// <summary>The format of <paramref name="role"/>, or null when that role stays FP32.</summary>
    /// <param name="role">The tensor role.</param>
    public DfpFormat? For(TensorRole role) => role switch
    {
        TensorRole.Weight => Weight,
        TensorRole.Activation => Activation,
        TensorRole.Error => Error,
        TensorRole.WeightGradient => WeightGradient,
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, $"TensorRole {role} is not defined."),
    };

    /// <summary>True when no role is quantised.</summary>
    public bool IsFp32 => Weight is null && Activation is null && Error is null && WeightGradient is null;

    /// <summary>Validates every non-null role format.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A format property is out of range; the message names role, property and value.</exception>
    public void Validate()
    {
        foreach (var role in Enum.GetValues<TensorRole>())
        {
            try
            {
                For(role)?.Validate();
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new ArgumentOutOfRangeException($"{role}.{e.ParamName}", e.ActualValue, $"Role {role}: {e.Message}");
            }
        }
    }

    /// <summary>Short description like "W=S-DFP8(s=2) A=S-DFP8(s=2) G=S-DFP8(s=2) WG=FP32".</summary>
    public override string ToString() =>
        $"W={DfpFormat.NameOf(Weight)} A={DfpFormat.NameOf(Activation)} G={DfpFormat.NameOf(Error)} WG={DfpFormat.NameOf(WeightGradient)}";
}
