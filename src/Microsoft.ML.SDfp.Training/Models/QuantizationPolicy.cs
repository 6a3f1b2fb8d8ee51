using Microsoft.ML.SDfp.Numerics.Formats;

namespace Microsoft.ML.SDfp.Training.Models;

/// <summary>
/// Which conv/linear layers of a ResNet are quantised, and with which per-role formats.
/// Batch norm, residual adds, pooling and the loss always stay FP32.
/// </summary>
/// <remarks>
/// Every quantised layer gets the same <see cref="Layers"/> configuration (one format per tensor
/// role). The stem conv and the classifier are the layers most sensitive to low precision — the
/// stem sees raw pixels and the classifier produces the logits — which is why the common practice
/// (and this policy's default) keeps both FP32; <see cref="QuantizeFirstConv"/> and
/// <see cref="QuantizeLastLinear"/> opt them in.
/// </remarks>
public sealed record QuantizationPolicy
{
    /// <summary>Configuration of every quantised conv/linear. Default: <see cref="QuantizationConfig.Fp32"/> (nothing quantised).</summary>
    public QuantizationConfig Layers { get; init; } = QuantizationConfig.Fp32;

    /// <summary>Whether the stem conv (<c>conv1</c>) uses <see cref="Layers"/>; otherwise it stays FP32. Default false.</summary>
    public bool QuantizeFirstConv { get; init; } = false;

    /// <summary>Whether the classifier (<c>fc</c>) uses <see cref="Layers"/>; otherwise it stays FP32. Default false.</summary>
    public bool QuantizeLastLinear { get; init; } = false;

    /// <summary>Everything FP32.</summary>
    public static QuantizationPolicy Fp32 { get; } = new();

    /// <summary>The body quantised with <paramref name="config"/>; stem conv and classifier FP32.</summary>
    public static QuantizationPolicy Body(QuantizationConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new QuantizationPolicy { Layers = config };
    }

    /// <summary>Every conv and linear, stem and classifier included, quantised with <paramref name="config"/>.</summary>
    public static QuantizationPolicy All(QuantizationConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return new QuantizationPolicy { Layers = config, QuantizeFirstConv = true, QuantizeLastLinear = true };
    }

    /// <summary>The configuration a layer in <paramref name="role"/> receives under this policy.</summary>
    public QuantizationConfig ConfigFor(ResNetLayerRole role) => role switch
    {
        ResNetLayerRole.FirstConv => QuantizeFirstConv ? Layers : QuantizationConfig.Fp32,
        ResNetLayerRole.LastLinear => QuantizeLastLinear ? Layers : QuantizationConfig.Fp32,
        ResNetLayerRole.Body => Layers,
        _ => throw new ArgumentOutOfRangeException(nameof(role), role, "Unknown layer role."),
    };

    /// <summary>Checks <see cref="Layers"/> and each of its formats.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A format is invalid; the message names the role, property and value.</exception>
    public void Validate()
    {
        if (Layers is null)
            throw new ArgumentNullException(nameof(Layers), "QuantizationPolicy.Layers must not be null; use QuantizationConfig.Fp32 for no quantisation.");
        try
        {
            Layers.Validate();
        }
        catch (ArgumentOutOfRangeException ex)
        {
            throw new ArgumentOutOfRangeException($"{nameof(Layers)}.{ex.ParamName}", ex.ActualValue,
                $"QuantizationPolicy.Layers: {ex.Message}");
        }
    }
}
